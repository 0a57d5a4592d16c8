"""tether's PySpark test job for memory limits: `alloc.py <MB> <hold_seconds>`.

The driver's Python process allocates MB and touches every page (so it counts in the container's
physical memory, where YARN's pmem check sees it), holds it, then starts and stops a
SparkSession. Past its container's size the NodeManager kills the container (exit -104); within
it the app succeeds, after printing "alloc done".
"""
import sys
import time

mb = int(sys.argv[1]) if len(sys.argv) > 1 else 64
hold = float(sys.argv[2]) if len(sys.argv) > 2 else 5
# bytearray * n fills the memory (memset), unlike bytearray(n), whose zero pages stay lazy.
block = bytearray(b"\x01") * (mb * 1024 * 1024)
print(f"alloc: holding {len(block) >> 20} MB for {hold}s", flush=True)
time.sleep(hold)

from pyspark.sql import SparkSession  # noqa: E402 (only once the allocation survived)

spark = SparkSession.builder.appName("tether-alloc").getOrCreate()
spark.stop()
print("alloc done", flush=True)
