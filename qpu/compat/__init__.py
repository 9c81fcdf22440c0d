"""Compatibility layers for kernels written for other QPU assemblers.

* ``qpu.compat.videocore``: py-videocore's ``@qpu`` DSL; a py-videocore kernel
  assembles unchanged, bit for bit, with ``from qpu.compat.videocore import *``
  instead of ``from videocore.assembler import qpu``.

New kernels should use ``qpu.dsl`` (explicit, no injected names).
"""
