"""Quality measures of augmented images: identity, expression response, geometry, artifacts."""
