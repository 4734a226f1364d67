"""Child process behind the Android demo's JVM stand-in for executorch-android.

``android_demo/jvm_executorch/.../Module.java`` starts ``python -m tests.executorch_bridge
PROGRAM.pte`` and speaks this protocol over the child's stdin/stdout, so that the app's Java
(``ExecuTorchModel``, the core's tokenizer, search and manifest code) runs end to end against a
real ``.pte`` on a desktop JVM, through the C++ ExecuTorch runtime of the ``executorch`` release
the program was exported with. The program is loaded from the file as the app loads it, with
``Verification.InternalConsistency``, and nothing else (no manifest, no hash: that is the Java
side's job).

Protocol (big-endian integers; tensor payloads raw little-endian, as executorch-android holds
them)::

    string  = int32 length, UTF-8 bytes
    tensor  = int32 ScalarType code, int32 ndim, int64 dims[ndim], int32 nbytes, bytes
    startup -> int32 0, int32 n, string method_name[n]     | int32 1, string error
    request <- int32 1, string method, int32 n, tensor[n]  (execute)   | int32 0 (exit)
    reply   -> int32 0, int32 n, tensor[n]                 | int32 1, string error
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from executorch.runtime import Method, Runtime, Verification

# ExecuTorch ScalarType codes and their little-endian numpy dtypes.
DTYPES: dict[int, np.dtype[np.generic]] = {
    0: np.dtype("u1"),
    1: np.dtype("i1"),
    3: np.dtype("<i4"),
    4: np.dtype("<i8"),
    6: np.dtype("<f4"),
    11: np.dtype("?"),
}
CODES = {dtype: code for code, dtype in DTYPES.items()}


def read_exact(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError(f"expected {n} bytes, got {len(data)}")
    return data


def read_int(stream: BinaryIO) -> int:
    value: int = struct.unpack(">i", read_exact(stream, 4))[0]
    return value


def read_string(stream: BinaryIO) -> str:
    return read_exact(stream, read_int(stream)).decode("utf-8")


def write_string(out: BinaryIO, text: str) -> None:
    data = text.encode("utf-8")
    out.write(struct.pack(">i", len(data)) + data)


def read_tensor(stream: BinaryIO) -> torch.Tensor:
    code, ndim = struct.unpack(">ii", read_exact(stream, 8))
    if code not in DTYPES:
        raise ValueError(f"unsupported ScalarType code {code}")
    shape = struct.unpack(f">{ndim}q", read_exact(stream, 8 * ndim))
    payload = read_exact(stream, read_int(stream))
    array = np.frombuffer(payload, dtype=DTYPES[code]).reshape(shape)
    return torch.from_numpy(array.copy())


def write_tensor(out: BinaryIO, tensor: torch.Tensor) -> None:
    array = np.ascontiguousarray(tensor.detach().numpy())
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    if dtype not in CODES:
        raise ValueError(f"unsupported output dtype {array.dtype}")
    data = array.astype(dtype, copy=False).tobytes()
    out.write(struct.pack(">ii", CODES[dtype], array.ndim))
    out.write(struct.pack(f">{array.ndim}q", *array.shape))
    out.write(struct.pack(">i", len(data)) + data)


def serve(program_path: Path, stdin: BinaryIO, stdout: BinaryIO) -> None:
    try:
        program = Runtime.get().load_program(
            program_path, verification=Verification.InternalConsistency
        )
        names = sorted(program.method_names)
        methods: dict[str, Method] = {name: program.load_method(name) for name in names}
    except Exception as error:  # reported to the JVM, which raises it from Module.load
        stdout.write(struct.pack(">i", 1))
        write_string(stdout, f"{type(error).__name__}: {error}")
        stdout.flush()
        return
    stdout.write(struct.pack(">ii", 0, len(names)))
    for name in names:
        write_string(stdout, name)
    stdout.flush()
    while read_int(stdin) == 1:
        name = read_string(stdin)
        inputs = [read_tensor(stdin) for _ in range(read_int(stdin))]
        try:
            if name not in methods:
                raise KeyError(f"no method {name!r}; the program has {names}")
            # Outputs may alias the method's memory: serialised before the next execute.
            outputs = list(methods[name].execute(inputs))
        except Exception as error:  # an ExecuTorch error becomes the Java RuntimeException
            stdout.write(struct.pack(">i", 1))
            write_string(stdout, f"{type(error).__name__}: {error}")
        else:
            stdout.write(struct.pack(">ii", 0, len(outputs)))
            for output in outputs:
                write_tensor(stdout, output)
        stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.executorch_bridge PROGRAM.pte", file=sys.stderr)
        return 2
    # The protocol owns the original stdout; anything else printed (runtime logs) goes to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        serve(Path(argv[0]), sys.stdin.buffer, protocol)
    except EOFError:
        return 0  # the JVM went away
    finally:
        protocol.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
