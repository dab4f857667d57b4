//! `Batch`: a list that keeps its first element inline and boxes the rest.
//!
//! Most of the session's lists hold one element (the one query waiting on a
//! symbol, the one name of a unit, the one completion of a transition), so
//! keeping it inline saves an allocation per list, and boxing the spill
//! keeps an empty or one-element list small (a name plus a pointer).
//!
//! Invariant: `rest` is only non-empty while `first` is set, so the order
//! is `first` then `rest`.

/// See the module docs.
pub(crate) struct Batch<T> {
    first: Option<T>,
    /// Boxed on purpose: one pointer instead of a `Vec`'s three words in
    /// every batch, for a spill that is rare.
    #[allow(clippy::box_collection)]
    rest: Option<Box<Vec<T>>>,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Batch {
            first: None,
            rest: None,
        }
    }
}

impl<T> Batch<T> {
    pub(crate) fn push(&mut self, item: T) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            self.rest.get_or_insert_with(Box::default).push(item);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.as_ref().map_or(0, |r| r.len())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.first
            .iter()
            .chain(self.rest.iter().flat_map(|r| r.iter()))
    }

    /// Keeps the items for which `keep` is true (called once per item, in
    /// order).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let first = self.first.take().filter(|x| keep(x));
        if let Some(rest) = self.rest.as_mut() {
            rest.retain(|x| keep(x));
        }
        self.first = first;
        if self.first.is_none() {
            if let Some(rest) = self.rest.as_mut().filter(|r| !r.is_empty()) {
                self.first = Some(rest.remove(0));
            }
        }
        if self.rest.as_ref().is_some_and(|r| r.is_empty()) {
            self.rest = None;
        }
    }
}

impl<T> FromIterator<T> for Batch<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut batch = Batch::default();
        for item in items {
            batch.push(item);
        }
        batch
    }
}

impl<T> IntoIterator for Batch<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    /// In push order.
    fn into_iter(self) -> Self::IntoIter {
        self.first
            .into_iter()
            .chain(self.rest.map(|r| *r).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_push_order_through_retain() {
        let mut batch = Batch::default();
        for i in 0..5 {
            batch.push(i);
        }
        assert_eq!(batch.len(), 5);
        batch.retain(|x| x % 2 == 1);
        assert_eq!(batch.iter().copied().collect::<Vec<_>>(), vec![1, 3]);
        batch.retain(|x| *x == 3);
        assert_eq!(batch.iter().copied().collect::<Vec<_>>(), vec![3]);
        assert!(batch.rest.is_none(), "an emptied spill is freed");
        batch.retain(|_| false);
        assert!(batch.is_empty());
        batch.push(7);
        batch.push(8);
        assert_eq!(batch.into_iter().collect::<Vec<_>>(), vec![7, 8]);
    }

    #[test]
    fn one_name_needs_no_more_than_a_pointer_besides() {
        let name = std::mem::size_of::<crate::SymbolName>();
        assert_eq!(
            std::mem::size_of::<Batch<crate::SymbolName>>(),
            name + std::mem::size_of::<usize>()
        );
    }
}
