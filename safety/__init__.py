"""FairFace safety suite: captions scored by the Perspective API (or a declared substitute)."""
