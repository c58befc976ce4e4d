"""Meters on the wire: DLMS/COSEM, Modbus and SunSpec.

* :mod:`meterstack.protocols.dlms`: the DLMS/COSEM server of the virtual meter and the
  head-end client (IEC 62056-5-3, 6-2, 47);
* :mod:`meterstack.protocols.modbus`: the meter's Modbus register map (TCP and RTU) and a
  head-end reader of third-party meters from a register-map file;
* :mod:`meterstack.protocols.sunspec`: a simulated SunSpec inverter and the export
  control link that drives it.
"""

from meterstack.protocols.errors import (
    AssociationError,
    DlmsServiceError,
    ProtocolError,
    SecurityError,
)

__all__ = ["AssociationError", "DlmsServiceError", "ProtocolError", "SecurityError"]
