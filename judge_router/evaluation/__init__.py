"""Measuring judges: data set loaders, scores, the eval run and its report."""
