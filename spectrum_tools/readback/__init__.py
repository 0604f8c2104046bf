"""Read Spectrum's current state in bulk, and compare it with what a sheet wants.

* :mod:`~spectrum_tools.readback.answers` — order answers read defensively (pure);
* :mod:`~spectrum_tools.readback.changes` — current -> wanted per line item, and what to do
  with each order (pure).
"""
