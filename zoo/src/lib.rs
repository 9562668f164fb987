//! Model zoo (to be written).
