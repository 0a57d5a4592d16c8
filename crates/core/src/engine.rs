//! The run protocol (placeholder while the engine is being written).
