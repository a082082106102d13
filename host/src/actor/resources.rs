//! What every actor of a host shares below the host: the [`Loader`] its
//! code is compiled and linked with, and the instance [`Slots`] awake
//! actors compete for.

use std::sync::Arc;

use super::{Loader, Slots};

/// The resources a host's actors share.
pub struct Resources {
    /// Compiles and links actor code.
    pub loader: Arc<Loader>,
    /// The awake actors a full instance pool may put to sleep.
    pub slots: Slots,
}

impl Resources {
    /// Resources over `loader`, with no actor awake yet.
    pub fn new(loader: Arc<Loader>) -> Self {
        Resources { loader, slots: Slots::default() }
    }
}
