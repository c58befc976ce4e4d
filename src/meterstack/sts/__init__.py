"""STS prepaid tokens (IEC 62055-41): a pure library for the vending side and the meter.

Encode and decode 20-digit tokens (classes 0, 1 and 2), with the token data block and its
CRC, the amount coding, the class transposition and the decimal display; the encryption
algorithms EA07 (STA), EA09 (DES) and EA11 (MISTY1); the decoder key generation algorithms
DKGA02 and DKGA04; TIDs and base dates; meter PANs; decoder keys sealed at rest; and a
vending-side :class:`TokenIssuer`. No I/O and no wall clock: times are passed in.
"""

from meterstack.sts.amount import MAX_AMOUNT, decode_amount, encode_amount
from meterstack.sts.codec import DecodedToken, decode_token, encode_token
from meterstack.sts.crc import crc16, token_crc
from meterstack.sts.datablock import (
    TokenClass,
    build_block,
    group_digits,
    insert_class,
    parse_token_digits,
    remove_class,
    split_block,
    token_digits,
)
from meterstack.sts.dea import dea_decrypt, dea_encrypt
from meterstack.sts.dkga import dkga02, dkga04
from meterstack.sts.ea import DecoderKeyGenerationAlgorithm, EncryptionAlgorithm
from meterstack.sts.errors import StsInputError, TokenFormatError
from meterstack.sts.keys import (
    KeyParameters,
    SealedKeyError,
    seal_decoder_key,
    seal_secret,
    unseal_decoder_key,
    unseal_secret,
)
from meterstack.sts.misty1 import misty1_decrypt, misty1_encrypt
from meterstack.sts.pan import MeterPan, luhn_check_digit
from meterstack.sts.sta import sta_decrypt, sta_encrypt
from meterstack.sts.tid import (
    MAX_TID,
    BaseDate,
    key_expired,
    local_time_of_tid,
    tid_at,
    tid_from_local,
)
from meterstack.sts.tokens import (
    CLEAR_ALL_REGISTERS,
    CreditKind,
    CreditToken,
    KeyChangeToken,
    KeyChangeToken1,
    KeyChangeToken2,
    KeyChangeToken3,
    KeyChangeToken4,
    ManagementKind,
    ManagementToken,
    MeterTestToken,
    Token,
    UnsupportedTokenError,
    decode_fields,
)
from meterstack.sts.vending import (
    IssuedToken,
    MeterRecord,
    TokenIssuer,
    VendingKey,
    decoder_key,
    meter_test_token,
)

__all__ = [
    "CLEAR_ALL_REGISTERS",
    "MAX_AMOUNT",
    "MAX_TID",
    "BaseDate",
    "CreditKind",
    "CreditToken",
    "DecodedToken",
    "DecoderKeyGenerationAlgorithm",
    "EncryptionAlgorithm",
    "IssuedToken",
    "KeyChangeToken",
    "KeyChangeToken1",
    "KeyChangeToken2",
    "KeyChangeToken3",
    "KeyChangeToken4",
    "KeyParameters",
    "ManagementKind",
    "ManagementToken",
    "MeterPan",
    "MeterRecord",
    "MeterTestToken",
    "SealedKeyError",
    "StsInputError",
    "Token",
    "TokenClass",
    "TokenFormatError",
    "TokenIssuer",
    "UnsupportedTokenError",
    "VendingKey",
    "build_block",
    "crc16",
    "dea_decrypt",
    "dea_encrypt",
    "decode_amount",
    "decode_fields",
    "decode_token",
    "decoder_key",
    "dkga02",
    "dkga04",
    "encode_amount",
    "encode_token",
    "group_digits",
    "insert_class",
    "key_expired",
    "local_time_of_tid",
    "luhn_check_digit",
    "meter_test_token",
    "misty1_decrypt",
    "misty1_encrypt",
    "parse_token_digits",
    "remove_class",
    "seal_decoder_key",
    "seal_secret",
    "split_block",
    "sta_decrypt",
    "sta_encrypt",
    "tid_at",
    "tid_from_local",
    "token_crc",
    "token_digits",
    "unseal_decoder_key",
    "unseal_secret",
]
