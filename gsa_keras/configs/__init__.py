"""Typed configs (Model Garden `hyperparams.Config`) for gsa_keras."""
