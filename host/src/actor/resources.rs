//! What every actor of a host shares below the host: the [`Loader`] its
//! code is compiled and linked with, the instance [`Slots`] awake actors
//! compete for, and the [`WarmInstances`] hot templates keep ready.

use std::sync::Arc;

use super::warm::WarmInstances;
use super::{Loader, Slots};

/// The resources a host's actors share.
pub struct Resources {
    /// Compiles and links actor code.
    pub loader: Arc<Loader>,
    /// The awake actors a full instance pool may put to sleep.
    pub slots: Slots,
    /// Instances made ahead for the templates that keep some.
    pub warm: WarmInstances,
}

impl Resources {
    /// Resources over `loader`, with no actor awake yet.
    pub fn new(loader: Arc<Loader>) -> Self {
        Resources { loader, slots: Slots::default(), warm: WarmInstances::default() }
    }
}
