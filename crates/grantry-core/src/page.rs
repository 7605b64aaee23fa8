//! Keyset paging: a page continues after the `seq` of the last row of the previous page, so
//! page 3,000 costs what page 1 does.

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 999;

#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub after_seq: Option<i64>,
    pub size: usize,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { after_seq: None, size: DEFAULT_PAGE_SIZE }
    }
}

/// A keyset page is a [`Listed`](crate::listing::Listed) whose cursor is a `seq`: one type
/// for every page, whatever query options made it.
pub type Page<T> = crate::listing::Listed<T>;
