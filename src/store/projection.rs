//! What an event changes, worked out once for every backend.
//!
//! Each topic becomes a list of [`Write`]s; a backend turns each into its own
//! SQL. Which topic touches which projection, and by which ordering value
//! (spec §3 "order by"), is decided only here. Every write that changes a
//! state carries its ordering value, and the backend applies it only when that
//! value is not older than the stored one.

use crate::tiktok::{topics::ProductStatusChange, Event, Topic};

/// One effect of an event on one projection row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write<'a> {
    /// An order status change (type 1).
    OrderStatus {
        order_id: &'a str,
        status: &'a str,
        on_hold: Option<bool>,
        update_time: Option<i64>,
    },
    /// A line in the order's status history: every status event, applied or
    /// not, even one whose status is null.
    OrderHistory {
        order_id: &'a str,
        status: Option<&'a str>,
        update_time: Option<i64>,
    },
    /// The order is mentioned: its row exists afterwards, and
    /// `address_updated_at` moves forward when given (type 3).
    OrderTouch {
        order_id: &'a str,
        address_updated_at: Option<i64>,
    },
    /// A cancellation, return, reverse order or refund of an order.
    Request(Request<'a>),
    /// A package and the orders it holds (type 4: split and combine). The
    /// newest event's list replaces the package's orders.
    Package {
        package_id: &'a str,
        sc_type: Option<&'a str>,
        role_type: Option<&'a str>,
        order_ids: Vec<&'a str>,
        update_time: Option<i64>,
    },
    /// A package's invoice state (type 36); adds the orders it names.
    Invoice {
        package_id: &'a str,
        order_ids: Vec<&'a str>,
        status: Option<&'a str>,
        invalid_reason: Option<&'a str>,
        time: Option<i64>,
    },
    /// One aspect of a product, ordered by the aspect's own time.
    Product {
        product_id: &'a str,
        aspect: ProductAspect<'a>,
        time: Option<i64>,
    },
    /// A shop's authorization state, ordered by envelope timestamps.
    Shop(ShopChange),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Cancellation,
    Return,
    ReverseOrder,
    Refund,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Cancellation => "cancellation",
            RequestKind::Return => "return",
            RequestKind::ReverseOrder => "reverse_order",
            RequestKind::Refund => "refund",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub order_id: &'a str,
    pub kind: RequestKind,
    pub request_id: &'a str,
    pub status: Option<&'a str>,
    pub role: Option<&'a str>,
    pub request_type: Option<&'a str>,
    pub amount: Option<&'a str>,
    pub currency: Option<&'a str>,
    pub update_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProductAspect<'a> {
    Status {
        status: Option<&'a str>,
        suspended_reason: Option<&'a str>,
    },
    Information {
        change_source: Option<&'a str>,
        changed_fields: &'a [String],
    },
    Creation {
        product_types: &'a [String],
    },
    Category {
        previous: Option<&'a str>,
        current: Option<&'a str>,
    },
    Audit {
        status: Option<&'a str>,
    },
}

/// A product column's value: text, or a list of texts (each backend keeps a
/// list its own way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnValue<'a> {
    Text(Option<&'a str>),
    List(&'a [String]),
}

/// The `products` columns an aspect writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AspectColumns<'a> {
    /// Fixed names, never from input, so they may be put into SQL.
    pub columns: &'static [&'static str],
    /// The aspect's own ordering column.
    pub time_column: &'static str,
    /// One value per column, in order.
    pub values: Vec<ColumnValue<'a>>,
}

impl<'a> ProductAspect<'a> {
    /// Which columns this aspect owns, for every backend.
    pub fn columns(&self) -> AspectColumns<'a> {
        use ColumnValue::{List, Text};
        let (columns, time_column, values): (&'static [&'static str], _, _) = match *self {
            ProductAspect::Status {
                status,
                suspended_reason,
            } => (
                &["status", "suspended_reason"],
                "status_time",
                vec![Text(status), Text(suspended_reason)],
            ),
            ProductAspect::Information {
                change_source,
                changed_fields,
            } => (
                &["change_source", "changed_fields"],
                "information_time",
                vec![Text(change_source), List(changed_fields)],
            ),
            ProductAspect::Creation { product_types } => (
                &["product_types"],
                "creation_time",
                vec![List(product_types)],
            ),
            ProductAspect::Category { previous, current } => (
                &["previous_category_id", "category_id"],
                "category_time",
                vec![Text(previous), Text(current)],
            ),
            ProductAspect::Audit { status } => {
                (&["audit_status"], "audit_time", vec![Text(status)])
            }
        };
        AspectColumns {
            columns,
            time_column,
            values,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShopChange {
    /// Any event but a deauthorization: the app is (again) authorized then.
    Activity {
        at: Option<i64>,
    },
    Deauthorized {
        at: Option<i64>,
    },
    ExpiryNotice {
        expires_at: Option<i64>,
        at: Option<i64>,
    },
}

/// Every write an event causes, in a fixed order.
pub fn writes(event: &Event) -> Vec<Write<'_>> {
    let mut out = topic_writes(event);
    if event.shop_id.is_some() {
        out.push(Write::Shop(shop_change(event)));
    }
    out
}

fn topic_writes(event: &Event) -> Vec<Write<'_>> {
    let time = event.ordering_time();
    match &event.topic {
        Topic::OrderStatusChange(change) => {
            let Some(order_id) = change.order_id.as_ref().map(|id| id.as_str()) else {
                return Vec::new();
            };
            let status = change.order_status.as_ref().map(|s| s.as_str());
            // A null or missing status says nothing about the state: the
            // order exists, and the history shows the event, nothing more.
            let state = match status {
                Some(status) => Write::OrderStatus {
                    order_id,
                    status,
                    on_hold: change.is_on_hold_order,
                    update_time: time,
                },
                None => Write::OrderTouch {
                    order_id,
                    address_updated_at: None,
                },
            };
            let history = Write::OrderHistory {
                order_id,
                status,
                update_time: time,
            };
            vec![state, history]
        }
        Topic::RecipientAddressUpdate(update) => touch(update.order_id.as_ref(), time),
        Topic::CancellationStatusChange(c) => with_touch(
            c.order_id.as_ref(),
            request(
                c.order_id.as_ref(),
                RequestKind::Cancellation,
                c.cancel_id.as_ref(),
                |r| Request {
                    status: c.cancel_status.as_deref(),
                    role: c.cancellations_role.as_deref(),
                    update_time: time,
                    ..r
                },
            ),
        ),
        Topic::ReturnStatusChange(r) => with_touch(
            r.order_id.as_ref(),
            request(
                r.order_id.as_ref(),
                RequestKind::Return,
                r.return_id.as_ref(),
                |req| Request {
                    status: r.return_status.as_deref(),
                    role: r.return_role.as_deref(),
                    request_type: r.return_type.as_deref(),
                    update_time: time,
                    ..req
                },
            ),
        ),
        Topic::ReverseOrderUpdate(r) => with_touch(
            r.order_id.as_ref(),
            request(
                r.order_id.as_ref(),
                RequestKind::ReverseOrder,
                r.reverse_order_id.as_ref(),
                |req| Request {
                    status: r.reverse_order_status.as_deref(),
                    role: r.reverse_user.as_deref(),
                    request_type: r.reverse_type.as_deref(),
                    update_time: time,
                    ..req
                },
            ),
        ),
        Topic::RefundSuccess(refund) => {
            let request_id = refund
                .aftersales_request_id
                .as_ref()
                .or(refund.rma_id.as_ref());
            let orders = event.topic.order_ids();
            let requests = orders.into_iter().map(|order_id| {
                let r = request(Some(order_id), RequestKind::Refund, request_id, |r| {
                    Request {
                        status: refund.refund_status.as_deref(),
                        amount: refund.refund_total.as_deref(),
                        currency: refund.refund_currency.as_deref(),
                        update_time: time,
                        ..r
                    }
                });
                with_touch(Some(order_id), r)
            });
            requests.flatten().collect()
        }
        Topic::PackageUpdate(update) => {
            let packages = update.package_list.iter().filter_map(|p| {
                Some(Write::Package {
                    package_id: p.package_id.as_ref()?.as_str(),
                    sc_type: update.sc_type.as_deref(),
                    role_type: update.role_type.as_deref(),
                    order_ids: p.order_id_list.iter().map(|id| id.as_str()).collect(),
                    update_time: time,
                })
            });
            let orders = event.topic.order_ids().into_iter();
            packages
                .collect::<Vec<_>>()
                .into_iter()
                .chain(orders.flat_map(|id| touch(Some(id), None)))
                .collect()
        }
        Topic::InvoiceStatusChange(invoice) => {
            let order_ids: Vec<&str> = invoice.order_ids.iter().map(|id| id.as_str()).collect();
            let mut out: Vec<Write<'_>> = invoice
                .package_id
                .as_ref()
                .map(|id| Write::Invoice {
                    package_id: id.as_str(),
                    order_ids: order_ids.clone(),
                    status: invoice.invoice_status.as_deref(),
                    invalid_reason: invoice.invalid_reason.as_deref(),
                    time,
                })
                .into_iter()
                .collect();
            for id in &invoice.order_ids {
                out.extend(touch(Some(id), None));
            }
            out
        }
        Topic::ProductStatusChange(ProductStatusChange {
            product_id,
            status,
            suspended_reason,
            ..
        }) => product(
            product_id.as_ref(),
            ProductAspect::Status {
                status: status.as_deref(),
                suspended_reason: suspended_reason.as_deref(),
            },
            time,
        ),
        Topic::ProductInformationChange(info) => product(
            info.product_id.as_ref(),
            ProductAspect::Information {
                change_source: info.change_source.as_deref(),
                changed_fields: &info.changed_fields,
            },
            time,
        ),
        Topic::ProductCreation(created) => product(
            created.product_id.as_ref(),
            ProductAspect::Creation {
                product_types: &created.product_types,
            },
            time,
        ),
        Topic::ProductCategoryChange(change) => product(
            change.product_id.as_ref(),
            ProductAspect::Category {
                previous: change.previous_category_id.as_ref().map(|id| id.as_str()),
                current: change.current_category_id.as_ref().map(|id| id.as_str()),
            },
            time,
        ),
        Topic::ProductAuditStatusChange(audit) => product(
            audit.product_id.as_ref(),
            ProductAspect::Audit {
                status: audit.audit_status.as_deref(),
            },
            time,
        ),
        // An unreadable event still belongs to its order, when it names it.
        Topic::Malformed { order_id, .. } => touch(order_id.as_ref(), None),
        // Messages, seller-level FBT orders, account notices (handled by
        // shop_change), unknown topics: kept as events only.
        _ => Vec::new(),
    }
}

fn shop_change(event: &Event) -> ShopChange {
    let at = event.timestamp;
    match &event.topic {
        Topic::SellerDeauthorization(_) => ShopChange::Deauthorized { at },
        Topic::UpcomingAuthorizationExpiration(notice) => ShopChange::ExpiryNotice {
            expires_at: notice.expiration_time,
            at,
        },
        _ => ShopChange::Activity { at },
    }
}

fn touch(order_id: Option<&crate::tiktok::Id>, address_updated_at: Option<i64>) -> Vec<Write<'_>> {
    order_id
        .map(|id| Write::OrderTouch {
            order_id: id.as_str(),
            address_updated_at,
        })
        .into_iter()
        .collect()
}

/// A request write, when both the order and the request are named.
fn request<'a>(
    order_id: Option<&'a crate::tiktok::Id>,
    kind: RequestKind,
    request_id: Option<&'a crate::tiktok::Id>,
    fill: impl FnOnce(Request<'a>) -> Request<'a>,
) -> Option<Request<'a>> {
    Some(fill(Request {
        order_id: order_id?.as_str(),
        kind,
        request_id: request_id?.as_str(),
        status: None,
        role: None,
        request_type: None,
        amount: None,
        currency: None,
        update_time: None,
    }))
}

/// The order row first (so a request always has its order), then the
/// request when it is named.
fn with_touch<'a>(
    order_id: Option<&'a crate::tiktok::Id>,
    request: Option<Request<'a>>,
) -> Vec<Write<'a>> {
    let mut out = touch(order_id, None);
    out.extend(request.map(Write::Request));
    out
}

fn product<'a>(
    product_id: Option<&'a crate::tiktok::Id>,
    aspect: ProductAspect<'a>,
    time: Option<i64>,
) -> Vec<Write<'a>> {
    product_id
        .map(|id| Write::Product {
            product_id: id.as_str(),
            aspect,
            time,
        })
        .into_iter()
        .collect()
}

/// How the event's processing ends once its projections are applied:
/// `(success, error_message)`. A known topic whose data could not be read is
/// kept and acknowledged, but counted as failed so that someone looks at it.
pub fn processing_outcome(event: &Event) -> (bool, Option<String>) {
    match &event.topic {
        Topic::Malformed { reason, .. } => (false, Some(reason.clone())),
        _ => (true, None),
    }
}
