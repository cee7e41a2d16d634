"""Inference: grasp proposals from a trained model (density rejection, modes, ranking), CEM."""
