"""Serving: SavedModel and TFLite exports of a trained GSA classifier, and prediction."""
