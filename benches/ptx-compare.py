#!/usr/bin/env python3
"""Compile CUDA sources with NVRTC (the pip wheel that scripts/install-deps.sh installs) and
count each kernel entry's PTX instructions, by kind, side by side: how the kernels generated
from the WGSL (kernelgen) were weighed against the hand-written ones without a GPU.

    benches/ptx-compare.py NAME=FILE.cu NAME=FILE.cu ... [--arch sm_90]

The same options as the CUDA backend (engine/src/backend/cuda.rs): --std=c++17 --fmad=false.
"""
import argparse
import collections
import ctypes
import glob
import os
import re
import sys


def nvrtc():
    import nvidia

    for root in nvidia.__path__:
        for pattern in ("cu13/lib/libnvrtc.so.13", "cuda_nvrtc/lib/libnvrtc.so.12"):
            found = glob.glob(os.path.join(root, pattern))
            if found:
                # NVRTC opens its builtins library by name: load it first, globally.
                for builtins in glob.glob(os.path.join(os.path.dirname(found[0]), "libnvrtc-builtins.so*")):
                    ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)
                return ctypes.CDLL(found[0])
    sys.exit("no NVRTC wheel found: run scripts/install-deps.sh")


def compile_ptx(lib, source, arch):
    program = ctypes.c_void_p()
    check = lambda rc, what: rc == 0 or sys.exit(f"{what} failed: {rc}")
    check(lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(), b"k.cu", 0, None, None), "create")
    options = [f"--gpu-architecture={arch}".encode(), b"--std=c++17", b"--fmad=false"]
    array = (ctypes.c_char_p * len(options))(*options)
    rc = lib.nvrtcCompileProgram(program, len(options), array)
    if rc != 0:
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(program, log)
        sys.exit(log.value.decode())
    size = ctypes.c_size_t()
    lib.nvrtcGetPTXSize(program, ctypes.byref(size))
    ptx = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetPTX(program, ptx)
    return ptx.value.decode()


KINDS = [
    ("mul.hi / mul.lo", re.compile(r"^mul\.(hi|lo)")),
    ("fp32 arithmetic", re.compile(r"^(add|sub|mul|fma|neg|abs|min|max|sqrt|rcp|div)\.(rn\.)?f32")),
    ("fp64 arithmetic", re.compile(r"^(add|sub|mul|fma|neg|abs|min|max|div)\.(rn\.)?f64")),
    ("branches", re.compile(r"^bra")),
    ("memory", re.compile(r"^(ld|st|atom|red)\.")),
]


def count(ptx):
    entries = {}
    name = None
    for line in ptx.splitlines():
        m = re.match(r"\.(visible\s+)?\.entry\s+(\w+)", line.strip())
        if m:
            name = m.group(2)
            entries[name] = collections.Counter()
            continue
        if name is None:
            continue
        text = line.strip()
        if text == "}" and not line.startswith("\t"):
            name = None
            continue
        if not text or text.startswith(("//", ".", "{", "}", "$")) or text.endswith(":"):
            continue
        body = re.sub(r"^@!?%p\d+\s+", "", text)
        entries[name]["instructions"] += 1
        entries[name]["op " + body.split()[0].rstrip(";")] += 1
        for kind, pattern in KINDS:
            if pattern.match(body):
                entries[name][kind] += 1
                break
    return entries


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sources", nargs="+")
    parser.add_argument("--arch", default="sm_90")
    args = parser.parse_args()
    lib = nvrtc()
    counted = {}
    for item in args.sources:
        label, path = item.split("=", 1)
        counted[label] = count(compile_ptx(lib, open(path).read(), args.arch))
    labels = list(counted)
    entries = sorted(set().union(*(c.keys() for c in counted.values())))
    print(f"PTX for {args.arch} (NVRTC, --fmad=false), instructions per entry")
    print("| entry | count | " + " | ".join(labels) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in labels) + " |")
    for entry in entries:
        for kind in ["instructions"] + [k for k, _ in KINDS]:
            row = [str(counted[l].get(entry, {}).get(kind, 0)) for l in labels]
            print(f"| {entry} | {kind} | " + " | ".join(row) + " |")
        opcodes = [
            sorted((k, v) for k, v in counted[l].get(entry, {}).items() if k.startswith("op "))
            for l in labels
        ]
        same = "yes" if all(o == opcodes[0] for o in opcodes) else "no"
        print(f"| {entry} | same opcodes, same counts | " + " | ".join(same for _ in labels) + " |")


main()
