//! What every handler shares.

use std::sync::Arc;

use crate::{config::Config, store::Db};

/// Shared application state: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
}
