//! kubesim-patch
