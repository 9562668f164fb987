//! The `.seir` text form (to be written).
