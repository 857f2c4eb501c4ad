#!/usr/bin/python3
"""tools/bench/mkimage.py -- a benchmark image as an OCI layout, offline (stdlib only).

    /usr/bin/python3 mkimage.py DIR REF SIZE [SIZE...]

Writes an OCI image layout DIR with one image named REF: an OCI image manifest, a config and
one gzip'd tar layer per SIZE (bytes; K, M and G suffixes allowed), each holding one file of
SIZE incompressible bytes (/layerN.bin). The gzip stream uses level 0 (stored blocks): valid
gzip that costs nothing to write, so a 256 MiB layer is a 256 MiB blob. Prints one JSON object:
{"manifest": "sha256:...", "config": "sha256:...", "layers": [{"digest", "size"}, ...]}.
Streams through temporary files, so memory stays small whatever the sizes.
"""
import gzip
import hashlib
import json
import os
import random
import sys
import tarfile
import tempfile

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CHUNK = 1 << 20


def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if s[-1:].upper() in mult:
        return int(s[:-1]) * mult[s[-1:].upper()]
    return int(s)


def blob_dir(root):
    d = os.path.join(root, "blobs", "sha256")
    os.makedirs(d, exist_ok=True)
    return d


def put_bytes(root, data):
    dgst = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blob_dir(root), dgst), "wb") as f:
        f.write(data)
    return "sha256:" + dgst, len(data)


class HashingWriter:
    """A file object that hashes and counts what goes through it."""

    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b)

    def flush(self):
        self.f.flush()


def put_layer(root, index, size, rnd):
    tmpdir = blob_dir(root)
    payload = tempfile.NamedTemporaryFile(dir=tmpdir, delete=False)
    left = size
    while left > 0:
        n = min(CHUNK, left)
        payload.write(rnd.randbytes(n))
        left -= n
    payload.close()
    gz_tmp = tempfile.NamedTemporaryFile(dir=tmpdir, delete=False)
    gz_hash = HashingWriter(gz_tmp)
    with gzip.GzipFile(fileobj=gz_hash, mode="wb", compresslevel=0, mtime=0) as gz:
        tar_hash = HashingWriter(gz)
        with tarfile.open(fileobj=tar_hash, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
            ti = tarfile.TarInfo("layer%d.bin" % index)
            ti.size = size
            ti.mtime = 0
            ti.mode = 0o644
            with open(payload.name, "rb") as src:
                tar.addfile(ti, src)
    gz_tmp.close()
    os.unlink(payload.name)
    dgst = gz_hash.h.hexdigest()
    os.chmod(gz_tmp.name, 0o644)
    os.replace(gz_tmp.name, os.path.join(tmpdir, dgst))
    return {"mediaType": MT_LAYER, "digest": "sha256:" + dgst, "size": gz_hash.n}, \
        "sha256:" + tar_hash.h.hexdigest()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    root, ref = sys.argv[1], sys.argv[2]
    sizes = [parse_size(s) for s in sys.argv[3:]]
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    rnd = random.Random(20240101)
    layers, diff_ids = [], []
    for i, size in enumerate(sizes):
        desc, diff = put_layer(root, i, size, rnd)
        layers.append(desc)
        diff_ids.append(diff)
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cdig, csize = put_bytes(root, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                "config": {"mediaType": MT_CONFIG, "digest": cdig, "size": csize},
                "layers": layers}
    mdig, msize = put_bytes(root, json.dumps(manifest, indent=2).encode())
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": MT_MANIFEST, "digest": mdig, "size": msize,
         "annotations": {"org.opencontainers.image.ref.name": ref}}]}
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(index, f)
    print(json.dumps({"manifest": mdig, "config": cdig,
                      "layers": [{"digest": l["digest"], "size": l["size"]} for l in layers]}))


if __name__ == "__main__":
    main()
