"""COSEM interface classes mapped onto the meter model (IEC 62056-6-2)."""

from meterstack.protocols.dlms.cosem.base import CosemObject, MeterBinding, ServiceContext
from meterstack.protocols.dlms.cosem.objects import build_object_list

__all__ = ["CosemObject", "MeterBinding", "ServiceContext", "build_object_list"]
