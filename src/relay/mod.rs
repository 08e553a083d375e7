//! The in-memory relay: live login sessions, each tied to the one widget
//! socket that created it, finished exactly once.

mod confirmed;
mod registry;
mod session;

pub use confirmed::{ConfirmedLog, ConsumeError, VERIFY_WINDOW_MS};
pub use registry::{NotOpened, Registry, WidgetGuard};
pub use session::{Closing, Event, Outcome, RelayError, Session, WidgetMeta};
