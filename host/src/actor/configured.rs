//! Handles on the services a template is configured with (a binding's
//! retries and circuit breaker, an `http` grant's port): the clones of a
//! spec share one service, and two specs compare equal when their services
//! are the same or configured alike, so that specs built twice from one
//! manifest entry are equal.

use std::fmt;
use std::sync::Arc;

/// A service that can say how it is configured.
pub trait Configured: Send + Sync + 'static {
    /// Its configuration as written, to compare two specs.
    fn describe(&self) -> String;
}

/// A shared handle on a configured service.
pub struct Handle<T: ?Sized>(pub Arc<T>);

impl<T: ?Sized> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Handle(Arc::clone(&self.0))
    }
}

impl<T: ?Sized + Configured> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Handle").field(&self.0.describe()).finish()
    }
}

impl<T: ?Sized + Configured> PartialEq for Handle<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.describe() == other.0.describe()
    }
}

impl<T: ?Sized + Configured> Eq for Handle<T> {}
