#!/usr/bin/python3
"""tests/integration/docker/mkimage.py -- builds tiny OCI image layouts offline (stdlib only).

    /usr/bin/python3 mkimage.py DIR REF [--platform OS/ARCH[/VARIANT]]... [--text S] [--big BYTES]

Adds to the OCI layout DIR (created if needed) an image named REF (the
org.opencontainers.image.ref.name annotation in index.json):
  * one platform (the default, linux/amd64): an OCI image manifest with a config
    and two gzip'd tar layers: /hello.txt holding S, and /big.bin holding BYTES
    pseudo-random (incompressible) bytes when --big is given;
  * several --platform options: one such image per platform (each with its own
    text and config) and an OCI image index over them with platform fields.
Everything is deterministic (mtimes 0, fixed gzip header), so the same arguments
give the same digests. Prints the digest of REF's manifest or index.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import tarfile

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def put_blob(root, data):
    dgst = hashlib.sha256(data).hexdigest()
    d = os.path.join(root, "blobs", "sha256")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, dgst), "wb") as f:
        f.write(data)
    return "sha256:" + dgst


def layer(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=6) as g:
        g.write(tar_bytes)
    return gz.getvalue(), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def image(root, plat, text, big):
    os_, arch, *rest = plat.split("/")
    variant = rest[0] if rest else None
    layers = [layer([("hello.txt", (text + "\n").encode())])]
    if big:
        rnd = random.Random(big * 7919 + len(text))
        layers.append(layer([("big.bin", rnd.randbytes(big))]))
    descs, diff_ids = [], []
    for gz, diff in layers:
        descs.append({"mediaType": MT_LAYER, "digest": put_blob(root, gz), "size": len(gz)})
        diff_ids.append(diff)
    config = {"architecture": arch, "os": os_,
              "config": {"Cmd": ["/bin/sh"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    if variant:
        config["variant"] = variant
    cfg = json.dumps(config, sort_keys=True).encode()
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                "config": {"mediaType": MT_CONFIG, "digest": put_blob(root, cfg), "size": len(cfg)},
                "layers": descs}
    mb = json.dumps(manifest, indent=2).encode()
    platform = {"architecture": arch, "os": os_}
    if variant:
        platform["variant"] = variant
    return {"mediaType": MT_MANIFEST, "digest": put_blob(root, mb), "size": len(mb),
            "platform": platform}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("ref")
    ap.add_argument("--platform", action="append", default=[])
    ap.add_argument("--text", default="hello")
    ap.add_argument("--big", type=int, default=0)
    a = ap.parse_args()
    root = a.dir
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    plats = a.platform or ["linux/amd64"]
    if len(plats) == 1:
        top = image(root, plats[0], a.text, a.big)
        del top["platform"]
    else:
        kids = [image(root, p, "%s %s" % (a.text, p), a.big) for p in plats]
        ib = json.dumps({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": kids},
                        indent=2).encode()
        top = {"mediaType": MT_INDEX, "digest": put_blob(root, ib), "size": len(ib)}
    top["annotations"] = {"org.opencontainers.image.ref.name": a.ref}
    ipath = os.path.join(root, "index.json")
    index = {"schemaVersion": 2, "manifests": []}
    if os.path.exists(ipath):
        with open(ipath) as f:
            index = json.load(f)
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                          != a.ref] + [top]
    with open(ipath, "w") as f:
        json.dump(index, f)
    print(top["digest"])


if __name__ == "__main__":
    main()
