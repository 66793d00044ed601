//! The lifecycle of a profile, below the commands: bringing it up, judging
//! its health, and removing it. Commands parse, check access, call these and
//! print; they never import each other.

pub mod enter;
pub mod health;
pub mod parts;
pub mod teardown;
pub mod up;

pub use enter::{Entering, open_entering};
pub use health::{Assessment, Health, assess, health, state_word};
pub use up::{Options, Outcome, check, up};
