"""Networks (feature extractor, actor and critic heads) and the model file format."""
