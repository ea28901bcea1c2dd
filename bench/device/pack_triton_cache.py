"""Pack fla's compiled Triton kernels small enough to come back from the device: a copy of the cache with the
intermediate IR dropped (.ttir, .ttgir, .llir, .ptx, .source: a cache hit needs only a kernel's metadata .json and its
binary), as an xz tarball. Usage: pack_triton_cache.py CACHE_DIR OUT.tar.xz [MAX_BYTES]; exits 1 (writing nothing)
when the tarball would be larger than MAX_BYTES."""
import json
import os
import shutil
import sys
import tarfile
import tempfile

DROP = (".ttir", ".ttgir", ".llir", ".ptx", ".source")


def main() -> int:
    cache, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 16_000_000
    if not os.path.isdir(cache):
        print(f"no Triton cache at {cache}")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, os.path.basename(cache))
        shutil.copytree(cache, copy)
        for root, _, files in os.walk(copy):
            for name in files:
                path = os.path.join(root, name)
                if name.endswith(DROP):
                    os.remove(path)
                elif name.startswith("__grp__") and name.endswith(".json"):
                    with open(path) as f:
                        grp = json.load(f)
                    kids = grp.get("child_paths", {})
                    grp["child_paths"] = {k: v for k, v in kids.items() if not k.endswith(DROP)}
                    with open(path, "w") as f:
                        json.dump(grp, f)
        part = out + ".part"
        with tarfile.open(part, "w:xz", preset=6) as tar:
            tar.add(copy, arcname=os.path.basename(cache))
    size = os.path.getsize(part)
    if size > limit:
        os.remove(part)
        print(f"Triton cache packs to {size / 1e6:.1f} MB, over {limit / 1e6:.1f} MB: not returned")
        return 1
    os.replace(part, out)
    print(f"Triton cache packed to {out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
