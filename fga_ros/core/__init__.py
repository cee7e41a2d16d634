"""Learning core (torch, no ROS): networks, density and divergence estimators, training."""
