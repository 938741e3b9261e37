//! Pages of results: order, cursor, limit, and the filter for listing conversations.

use protofuse_model::ConversationStatus;

/// Sort order of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

/// Which page to read: items strictly after `after` in `order`, at most `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// The cursor returned with the previous page; `None` for the first page.
    pub after: Option<uuid::Uuid>,
    /// Page size, clamped to [`PageRequest::MAX_LIMIT`].
    pub limit: u32,
    /// Sort order.
    pub order: Order,
}

impl PageRequest {
    /// Largest page served; bigger requests are clamped.
    pub const MAX_LIMIT: u32 = 500;
    /// Page size when the caller does not ask.
    pub const DEFAULT_LIMIT: u32 = 50;

    pub(crate) fn clamped_limit(&self) -> u32 {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            after: None,
            limit: Self::DEFAULT_LIMIT,
            order: Order::default(),
        }
    }
}

/// A page of results and the cursor for the next one (`None` on the last page).
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as [`PageRequest::after`] to read on.
    pub next_cursor: Option<uuid::Uuid>,
}

/// Which conversations to list. Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// The customer's external id.
    pub customer_id: Option<String>,
    /// The status.
    pub status: Option<ConversationStatus>,
}
