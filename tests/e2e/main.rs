//! End-to-end tests of the real `ldexp` binary against the emulator.
