#!/usr/bin/env python3
"""Binary image -> UF2 (https://github.com/microsoft/uf2): 512-byte blocks, each carrying 256 bytes of the image
at its flash address, with the family id so a boot loader rejects images for another chip.

    uf2conv.py --base 0x10000000 --family 0xe48bff56 firmware.bin firmware.uf2
"""
import argparse, struct

MAGIC_START0, MAGIC_START1, MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
FLAG_FAMILY_ID_PRESENT = 0x00002000
PAYLOAD = 256

parser = argparse.ArgumentParser()
parser.add_argument("--base", type=lambda s: int(s, 0), required=True)
parser.add_argument("--family", type=lambda s: int(s, 0), required=True)
parser.add_argument("input")
parser.add_argument("output")
args = parser.parse_args()

data = open(args.input, "rb").read()
data += bytes(-len(data) % PAYLOAD)
count = len(data) // PAYLOAD
with open(args.output, "wb") as out:
    for n in range(count):
        chunk = data[n * PAYLOAD:(n + 1) * PAYLOAD]
        header = struct.pack("<8I", MAGIC_START0, MAGIC_START1, FLAG_FAMILY_ID_PRESENT,
                             args.base + n * PAYLOAD, PAYLOAD, n, count, args.family)
        block = header + chunk + bytes(476 - PAYLOAD) + struct.pack("<I", MAGIC_END)
        assert len(block) == 512
        out.write(block)
print("%s: %d blocks, %d bytes at 0x%08x" % (args.output, count, len(data), args.base))
