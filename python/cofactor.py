"""Read cofactor snapshots with NumPy alone.

A snapshot is the directory `cofactor train --out DIR` (or `snapshot pull`)
writes: manifest.json, the factor files (users.NNNN.cfcf, items.NNNN.cfcf)
and, for a job's final snapshot, each user's training items
(seen.NNNN.cfsn). docs/formats.md describes the files.

    >>> from cofactor import Snapshot
    >>> s = Snapshot("model/")
    >>> s.user_factors.shape, s.item_factors.dtype
    ((610, 10), dtype('float32'))
    >>> s.recommend("1", 3)
    [('1172', 5.61...), ('1224', 5.52...), ('3451', 5.49...)]

recommend() ranks exactly as `cofactor recommend` does: score μ + x_u·y_i
(μ is 0 unless the model has biases), highest first, ties to the item
that comes first in the snapshot. Scores are float32 sums, so their last
bits may differ from the CLI's, whose kernels sum in another order.
"""

import json
import os

import numpy as np

__all__ = ["Snapshot", "SnapshotError"]

_FACTOR_MAGIC = b"CFCF"
_SEEN_MAGIC = b"CFSN"


class SnapshotError(ValueError):
    """A snapshot directory that cannot be read: missing, damaged or of an
    unknown format. The message names the file."""


class Snapshot:
    """A snapshot directory, read whole.

    Attributes:
        manifest: the manifest (a dict).
        user_ids, item_ids: external IDs (lists of str) in row order.
        user_factors, item_factors: float32 arrays, rows × rank. With
            biases (manifest["biases"]) each row ends with its two bias
            columns: a user [x, b_u, 1], an item [y, 1, c_i].
        global_mean: μ of a model with biases, else 0.
    """

    def __init__(self, path):
        self.path = path
        self.manifest = _read_manifest(path)
        m = self.manifest
        self.rank = int(m["rank"])
        self.biases = bool(m.get("biases", False))
        self.global_mean = np.float32(m.get("global_mean", 0.0) if self.biases else 0.0)
        files = sorted(m["files"], key=lambda f: (f["kind"], f["side"], f["block"]))
        sides = {"users": [], "items": []}
        seen = []
        for f in files:
            data = _read_file(path, f)
            if f["kind"] == "factors":
                sides[f["side"]].append(_decode_factors(f["name"], data, self.rank))
            elif f["kind"] == "seen":
                seen.append(_decode_seen(f["name"], data))
        self.user_ids, self.user_factors = _concat(sides["users"], self.rank)
        self.item_ids, self.item_factors = _concat(sides["items"], self.rank)
        if len(self.user_ids) != m["users"] or len(self.item_ids) != m["items"]:
            raise SnapshotError("%s: the files hold %d users and %d items, the manifest says %d and %d"
                                % (path, len(self.user_ids), len(self.item_ids), m["users"], m["items"]))
        self._users = {u: r for r, u in enumerate(self.user_ids)}
        self._items = {i: r for r, i in enumerate(self.item_ids)}
        self._seen = None
        if seen:
            self._seen = [items for block in seen for items in block]
            if len(self._seen) != len(self.user_ids):
                raise SnapshotError("%s: seen items cover %d users of %d" % (path, len(self._seen), len(self.user_ids)))

    def user_row(self, user_id):
        """The row of a user ID (KeyError for an unknown user)."""
        return self._users[user_id]

    def item_row(self, item_id):
        """The row of an item ID (KeyError for an unknown item)."""
        return self._items[item_id]

    def seen(self, user_id):
        """The user's training items' rows (ascending), or None when the
        snapshot does not hold them (not a job's final snapshot)."""
        if self._seen is None:
            return None
        return self._seen[self._users[user_id]]

    def scores(self, user_id):
        """μ + x_u·y_i for every item, float32."""
        x = self.user_factors[self._users[user_id]]
        return (self.item_factors @ x + self.global_mean).astype(np.float32)

    def recommend(self, user_id, k, exclude_seen=False):
        """The k best items for a user of the snapshot as [(item_id, score)],
        best first, ties to the lower item row; exclude_seen leaves out the
        user's training items (the snapshot must hold them)."""
        s = self.scores(user_id)
        candidates = np.ones(len(s), dtype=bool)
        if exclude_seen:
            seen = self.seen(user_id)
            if seen is None:
                raise SnapshotError("%s holds no training items (it is not a job's final snapshot)" % self.path)
            candidates[seen] = False
        rows = np.flatnonzero(candidates & ~np.isnan(s))
        # Highest score first, then the lower row: lexsort's last key is the primary one.
        order = rows[np.lexsort((rows, -s[rows]))][:k]
        return [(self.item_ids[i], float(s[i])) for i in order]


def _read_manifest(path):
    name = os.path.join(path, "manifest.json")
    try:
        with open(name, "rb") as f:
            m = json.load(f)
    except FileNotFoundError:
        raise SnapshotError("%s: not a snapshot directory (no manifest.json)" % path) from None
    except ValueError as e:
        raise SnapshotError("%s: %s" % (name, e)) from None
    if m.get("format") != "cofactor-snapshot" or m.get("version") not in (2, 3):
        raise SnapshotError("%s: format %r version %r, want cofactor-snapshot version 2 or 3"
                            % (name, m.get("format"), m.get("version")))
    return m


def _read_file(path, f):
    name = os.path.join(path, f["name"])
    with open(name, "rb") as fh:
        data = fh.read()
    if len(data) != f["bytes"]:
        raise SnapshotError("%s: %d bytes, the manifest says %d" % (name, len(data), f["bytes"]))
    return data


def _u32(data, off):
    return int.from_bytes(data[off:off + 4], "little")


def _decode_factors(name, data, rank):
    if data[:4] != _FACTOR_MAGIC or _u32(data, 4) != 2:
        raise SnapshotError("%s: not a version-2 factor file" % name)
    if _u32(data, 13) != rank:
        raise SnapshotError("%s: rank %d, the manifest says %d" % (name, _u32(data, 13), rank))
    rows = int.from_bytes(data[17:25], "little")
    off, ids = 25, []
    for _ in range(rows):
        n = _u32(data, off)
        ids.append(data[off + 4:off + 4 + n].decode("utf-8"))
        off += 4 + n
    off += 4 * rows  # the rows' training rating counts
    end = off + 4 * rows * rank
    if end + 4 != len(data):
        raise SnapshotError("%s: %d bytes, the header promises %d" % (name, len(data), end + 4))
    factors = np.frombuffer(data, dtype="<f4", count=rows * rank, offset=off).reshape(rows, rank)
    return ids, factors


def _uvarint(data, off):
    v, shift = 0, 0
    while True:
        b = data[off]
        off += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, off
        shift += 7


def _decode_seen(name, data):
    version = _u32(data, 4)
    if data[:4] != _SEEN_MAGIC or version not in (2, 3):
        raise SnapshotError("%s: not a version-2 or 3 seen-items file" % name)
    rows = int.from_bytes(data[12:20], "little")
    off, out = 28, []
    for _ in range(rows):
        n, off = _uvarint(data, off)
        items, prev = [], -1
        for _ in range(n):
            gap, off = _uvarint(data, off)
            prev += gap + 1
            items.append(prev)
        out.append(np.array(items, dtype=np.int64))
    return out


def _concat(blocks, rank):
    ids = [i for block_ids, _ in blocks for i in block_ids]
    if not blocks:
        return ids, np.zeros((0, rank), dtype=np.float32)
    return ids, np.concatenate([f for _, f in blocks]).astype(np.float32, copy=False)
