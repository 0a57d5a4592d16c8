//! State stores (being written).
