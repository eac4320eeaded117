"""Content-addressed request blocks: how the gateway log stays linear in a session's length.

An agent resends its whole conversation with every request, so logging each request whole
makes a long session's log grow with the square of its length. Instead, each record stores
its request with the big parts (PACKED_KEYS: the message or input list, tools, system
prompt, instructions) replaced by references, and stores only the blocks this trial's log
does not hold yet:

- every value is named by `sha256(canonical(value))`. A value is referenced by its name
  when the log holds it (stored as a block, or rebuilt earlier); a new value with strings of
  at least HOLE_MIN_CHARS is stored as `{"name", "skeleton", "holes": [[path, name], …]}`:
  the value with those strings set to null (a block), and each string a block of its own.
  Agents rewrite old messages a little (Claude Code moves its cache_control marker to the
  newest message every turn), so a changed message costs its small skeleton, not its text.
- a list value (`messages`, `input`, `tools`, a list-shaped `system`) is a chain of items; a
  prefix of the list is named by `L_i = sha256(L_{i-1} + name_i)` from `L_0` = 64 zeros. The
  record says `{"prefix": L_k, "items": [ref_k+1, …, ref_n]}`: the longest prefix the log
  already holds, then the new items. A conversation's next request costs its new messages.
- any other value of at least WHOLE_MIN_BYTES is referenced the same way as a list item.

The record keeps the request's keys in their order, each packed key's value `null`, and
carries `"packed": {key: reference}` and `"blocks": {name: value}` (the blocks new to the
log, in first-use order). These fields are part of the record, so the hash chain covers
every stored byte; `unpack` checks each block against its name, so a block changed and
rehashed into a new chain is caught too. `Unpacker` is the one reader: `trial verify`,
the evidence timeline and the graders all get requests through it, byte for byte the
canonical JSON the gateway received. Records without `packed` (logs written before this
format, refusals) are returned as they are.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from dataclasses import dataclass, field
from typing import Any

PACKED_KEYS = ("system", "instructions", "tools", "messages", "input")
WHOLE_MIN_BYTES = 256
"""A non-list value smaller than this stays inline: a reference would cost about as much."""
HOLE_MIN_CHARS = 256
"""Strings this long inside a value become blocks of their own (tool output, file contents)."""
ROOT = "0" * 64

Path_ = list[str | int]


class BlockError(ValueError):
    """A packed record that does not reconstruct: a missing or altered block, an unknown prefix."""


# One encoder for every call: json.dumps builds a new one per call when given separators,
# which costs more than encoding a small message.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)
# And, where CPython has it, its C encoder itself, built once (JSONEncoder.encode builds one
# per call): the same code and so the same bytes, a fifth faster on a gateway record. It is
# built without the circular-reference markers: a shared markers dict keeps stale entries
# after a failed call, and logged values come from parsed JSON, which cannot be circular
# (a deep one still raises RecursionError, as before).
_C_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)  # not in the typeshed stubs
_C_ENCODE: Any = None if _C_MAKE_ENCODER is None else _C_MAKE_ENCODER(
    None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)


def canonical(value: Any) -> str:
    """The log's one serialization (orchestrator.gateway.log.canonical): compact, ASCII, keys as given."""
    if _C_ENCODE is None:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))


def block_name(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode("ascii")).hexdigest()


def next_prefix(prefix: str, item: str) -> str:
    return hashlib.sha256((prefix + item).encode("ascii")).hexdigest()


def _skeleton(value: Any, path: Path_, holes: list[tuple[Path_, str]]) -> Any:
    """`value` with its long strings set to null; `holes` gets each one's path and text."""
    if isinstance(value, str) and len(value) >= HOLE_MIN_CHARS:
        holes.append((list(path), value))
        return None
    if isinstance(value, dict):
        return {key: _skeleton(child, [*path, key], holes) for key, child in value.items()}
    if isinstance(value, list):
        return [_skeleton(child, [*path, index], holes) for index, child in enumerate(value)]
    return value


@dataclass
class Packed:
    """One request in its stored form, and the names storing it makes known to the log."""

    request: dict[str, Any]
    packed: dict[str, Any]
    blocks: dict[str, Any]
    known: set[str] = field(default_factory=set)
    new_prefixes: list[str] = field(default_factory=list)


@dataclass
class Packer:
    """The writer's side: names of the values and list prefixes the trial's log already holds."""

    blocks: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)

    def pack(self, request: Any) -> Packed | None:
        """The stored form of a request, or None when nothing in it is worth packing.

        Nothing is remembered yet: call `commit` once the record is on disk (`learn` when
        reading one back), so a failed write leaves the known sets as the file is.
        """
        if not isinstance(request, dict):
            return None
        out = Packed(dict(request), {}, {})
        for key in PACKED_KEYS:
            value = request.get(key)
            if isinstance(value, list):
                out.packed[key] = self._pack_list(value, out)
            elif value is not None and len(canonical(value)) >= WHOLE_MIN_BYTES:
                out.packed[key] = self._ref(value, block_name(value), out)
            else:
                continue
            out.request[key] = None
        return out if out.packed else None

    def _known(self, name: str, out: Packed) -> bool:
        return name in self.blocks or name in out.known

    def _store(self, name: str, value: Any, out: Packed) -> None:
        if not self._known(name, out):
            out.blocks[name] = value
            out.known.add(name)

    def _ref(self, value: Any, name: str, out: Packed) -> Any:
        if self._known(name, out):
            return name
        holes: list[tuple[Path_, str]] = []
        try:
            skeleton = _skeleton(value, [], holes) if isinstance(value, dict | list) else value
        except RecursionError:
            holes = []  # nested deeper than Python recurses (the sender chose so): stored whole
        if not holes:
            self._store(name, value, out)
            return name
        skeleton_name = block_name(skeleton)
        self._store(skeleton_name, skeleton, out)
        filled: list[list[Any]] = []
        for path, text in holes:
            text_name = block_name(text)
            self._store(text_name, text, out)
            filled.append([path, text_name])
        out.known.add(name)  # a reader rebuilds it, and may be pointed at it by name later
        return {"name": name, "skeleton": skeleton_name, "holes": filled}

    def _pack_list(self, items: list[Any], out: Packed) -> dict[str, Any]:
        names = [block_name(item) for item in items]
        chain = [ROOT]
        for name in names:
            chain.append(next_prefix(chain[-1], name))
        known = 0
        this_request = set(out.new_prefixes)  # the same list twice in one request (rare, but exact)
        for index in range(len(chain) - 1, 0, -1):
            if chain[index] in self.prefixes or chain[index] in this_request:
                known = index
                break
        refs = [self._ref(item, name, out) for item, name in zip(items[known:], names[known:], strict=True)]
        out.new_prefixes.extend(chain[known + 1:])
        return {"prefix": chain[known], "items": refs}

    def commit(self, packed: Packed) -> None:
        self.blocks.update(packed.known)
        self.prefixes.update(packed.new_prefixes)

    def learn(self, record: dict[str, Any]) -> None:
        """Remember what a record read back from the log stores (without checking its contents)."""
        blocks = record.get("blocks")
        if isinstance(blocks, dict):
            self.blocks.update(str(name) for name in blocks)
        packed = record.get("packed")
        for reference in packed.values() if isinstance(packed, dict) else ():
            if isinstance(reference, dict) and isinstance(reference.get("items"), list):
                prefix = str(reference.get("prefix"))
                for item in reference["items"]:
                    name = _ref_name(item)
                    self.blocks.add(name)
                    prefix = next_prefix(prefix, name)
                    self.prefixes.add(prefix)
            elif reference is not None:
                self.blocks.add(_ref_name(reference))


def _ref_name(reference: Any) -> str:
    return str(reference.get("name")) if isinstance(reference, dict) else str(reference)


def packed_record(fields: dict[str, Any], packed: Packed) -> dict[str, Any]:
    """The record fields with the request in its stored form (blocks last, after everything else)."""
    return {**fields, "request": packed.request, "packed": packed.packed, "blocks": packed.blocks}


class Unpacker:
    """The reader's side: holds every value and prefix seen so far; read records in log order."""

    def __init__(self) -> None:
        self.blocks: dict[str, Any] = {}
        """Name → value: stored blocks and values rebuilt from skeletons."""
        self.prefixes: dict[str, tuple[str, str]] = {ROOT: (ROOT, "")}
        """Prefix name → (the prefix before it, its last item's name)."""

    def unpack(self, record: dict[str, Any], *, build: bool = True) -> dict[str, Any]:
        """The record as the gateway received it: `request` whole, `packed` and `blocks` gone.

        Raises BlockError when a block does not match its name or a reference names
        something the log does not hold (at this point). Values the request shares with
        earlier ones are the same objects: readers must not change them. Without `build`
        every reference is checked but old list items are not gathered (verification: a
        session's lists grow with its length, so gathering them all is quadratic).
        """
        packed = record.get("packed")
        if packed is None and "blocks" not in record:
            return record
        blocks = record.get("blocks")
        request = record.get("request")
        if not isinstance(packed, dict) or not isinstance(blocks, dict) or not isinstance(request, dict):
            raise BlockError("a packed record needs `packed` and `blocks` objects and a `request` object")
        for name, value in blocks.items():
            if block_name(value) != name:
                raise BlockError(f"block {name[:16]}… does not match its content (a byte changed)")
            self.blocks[name] = value
        whole = dict(request)
        for key, reference in packed.items():
            if key not in PACKED_KEYS or key not in request or request[key] is not None:
                raise BlockError(f"request key {key!r} is not a packed placeholder")
            if isinstance(reference, dict) and "prefix" in reference:
                whole[key] = self._list(key, reference, build)
            else:
                whole[key] = self._value(key, reference)[1]
        rest = {key: value for key, value in record.items() if key not in ("packed", "blocks")}
        rest["request"] = whole
        return rest

    def _list(self, key: str, reference: dict[str, Any], build: bool) -> list[Any]:
        prefix, refs = reference.get("prefix"), reference.get("items")
        if not isinstance(prefix, str) or not isinstance(refs, list):
            raise BlockError(f"request key {key!r}: a list reference needs a prefix and items")
        if prefix not in self.prefixes:
            raise BlockError(f"request key {key!r}: list prefix {prefix[:16]}… is not stored earlier in the log")
        names: list[str] = []
        cursor = prefix if build else ROOT
        while cursor != ROOT:
            cursor, name = self.prefixes[cursor]
            names.append(name)
        names.reverse()
        values = [self._block(key, name) for name in names]
        for ref in refs:
            name, value = self._value(key, ref)
            following = next_prefix(prefix, name)
            self.prefixes.setdefault(following, (prefix, name))
            prefix = following
            values.append(value)
        return values

    def _value(self, key: str, reference: Any) -> tuple[str, Any]:
        if isinstance(reference, str):
            return reference, self._block(key, reference)
        if not isinstance(reference, dict) or not isinstance(reference.get("name"), str) \
                or not isinstance(reference.get("skeleton"), str) or not isinstance(reference.get("holes"), list):
            raise BlockError(f"request key {key!r}: a reference is neither a name nor a skeleton with holes")
        # A fresh copy: the stored skeleton is shared by every value built from it.
        value = json.loads(canonical(self._block(key, reference["skeleton"])))
        for hole in reference["holes"]:
            if not (isinstance(hole, list) and len(hole) == 2 and isinstance(hole[0], list) and hole[0]
                    and isinstance(hole[1], str)):
                raise BlockError(f"request key {key!r}: a hole is not [path, name]")
            value = _fill(value, hole[0], self._block(key, hole[1]), key)
        name = block_name(value)
        if name != reference["name"]:
            raise BlockError(f"request key {key!r}: value {reference['name'][:16]}… does not rebuild from its "
                             "skeleton and holes (a byte changed)")
        self.blocks[name] = value
        return name, value

    def _block(self, key: str, name: str) -> Any:
        if name not in self.blocks:
            raise BlockError(f"request key {key!r}: block {name[:16]}… is not stored in or before this record")
        return self.blocks[name]


def _fill(value: Any, path: list[Any], text: Any, key: str) -> Any:
    parent = value
    for step in path[:-1]:
        parent = _step(parent, step, key)
    last = path[-1]
    if _step(parent, last, key) is not None:
        raise BlockError(f"request key {key!r}: a hole's path does not end at a null in its skeleton")
    parent[last] = text
    return value


def _step(parent: Any, step: Any, key: str) -> Any:
    if isinstance(parent, dict) and isinstance(step, str) and step in parent:
        return parent[step]
    if isinstance(parent, list) and isinstance(step, int) and not isinstance(step, bool) and 0 <= step < len(parent):
        return parent[step]
    raise BlockError(f"request key {key!r}: a hole's path leads nowhere in its skeleton")
