"""Studies that train several networks to test the paper's claims.

`python -m studies.fashion_mnist --out study_results/fashion_mnist` runs the
Fashion-MNIST study (see `studies.fashion_mnist`); `studies.report` turns its results
into Markdown and Fig. 2-style plots.
"""
