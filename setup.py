"""Packaging: everything installs under the one import namespace ``qpu``.

The repository keeps the layers in top-level folders (qpu/, runtime/, emulator/,
asm_kernels/); ``package_dir`` maps them to qpu.runtime, qpu.emulator and
qpu.kernels so nothing with a generic name lands at the top of site-packages.
"""

import os

from setuptools import setup

# folder in the repository -> package name
ROOTS = {
    "qpu": "qpu",
    "runtime": "qpu.runtime",
    "emulator": "qpu.emulator",
    "asm_kernels": "qpu.kernels",
}


def packages_and_dirs():
    packages, package_dir = [], {}
    here = os.path.dirname(os.path.abspath(__file__))
    for folder, package in ROOTS.items():
        for dirpath, dirnames, filenames in os.walk(os.path.join(here, folder)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
            if "__init__.py" not in filenames:
                continue
            rel = os.path.relpath(dirpath, here)
            sub = os.path.relpath(dirpath, os.path.join(here, folder))
            name = package if sub == "." else package + "." + sub.replace(os.sep, ".")
            packages.append(name)
            package_dir[name] = rel.replace(os.sep, "/")
    return packages, package_dir


PACKAGES, PACKAGE_DIR = packages_and_dirs()

setup(
    name="qpu-videocore",
    version="0.1.0",
    description="Write, check, emulate and run VideoCore IV QPU kernels (Raspberry Pi Zero/1/2/3) in Python",
    long_description=open(os.path.join(os.path.dirname(__file__), "README.md")).read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    install_requires=[
        "numpy>=1.19",
        # numba compiles the emulator's hot loop; it has no wheels for 32-bit ARM, where the
        # same code runs as plain Python.
        "numba>=0.56; platform_machine != 'armv7l' and platform_machine != 'armv6l'",
    ],
    extras_require={
        "remote": ["pyserial>=3.4"],
        "test": ["pytest>=7", "hypothesis>=6"],
        "lint": ["ruff", "mypy", "vermin"],
    },
    entry_points={"console_scripts": ["qpu=qpu.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.9",
        "Operating System :: POSIX :: Linux",
        "Topic :: Software Development :: Assemblers",
        "Topic :: System :: Emulators",
    ],
)
