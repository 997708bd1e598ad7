"""Input data: the built-in digits dataset and the pre-flight checks of input paths."""
