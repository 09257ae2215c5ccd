#!/usr/bin/env python3
"""Writes CDNOW_master.txt of the `lifetimes` package as DIR/transactions.csv.

The file lifetimes ships is whitespace-separated (customer id, date as YYYYMMDD, quantity,
amount); this writes it as CSV with a header, dates as written (segmenta.toml reads them
with `time_format = "%Y%m%d"`):

    customer_id,date,quantity,amount
    00001,19970101,1,11.77

Usage: python3 examples/cdnow/prepare.py DIR   (needs `pip install lifetimes`)
"""

import os
import sys

import lifetimes


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = sys.argv[1]
    source = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_master.txt")
    os.makedirs(out_dir, exist_ok=True)
    rows = 0
    target = os.path.join(out_dir, "transactions.csv")
    with open(source) as src, open(target + ".tmp", "w") as dst:
        dst.write("customer_id,date,quantity,amount\n")
        for line in src:
            fields = line.split()
            if not fields or not fields[0].isdigit():
                continue  # blank lines and the file's own header
            customer, date, quantity, amount = fields
            dst.write(f"{customer},{date},{quantity},{amount}\n")
            rows += 1
    os.replace(target + ".tmp", target)
    print(f"wrote {rows} transactions to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
