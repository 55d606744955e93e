//! Topics about products: types 5, 15, 16, 18 and 37.
//!
//! Types 5, 16 and 37 send `product_id` as a bare JSON number above 2^53; [`Id`] keeps
//! its exact digits.

use serde::Serialize;

use super::fields::{FieldError, Fields};
use crate::tiktok::ids::Id;

/// Type 5, PRODUCT_STATUS_CHANGE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductStatusChange {
    pub product_id: Option<Id>,
    pub status: Option<String>,
    pub suspended_reason: Option<String>,
    pub update_time: Option<i64>,
}

impl ProductStatusChange {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            product_id: d.id("product_id")?,
            status: d.text("status")?,
            suspended_reason: d.text("suspended_reason")?,
            update_time: d.time("update_time")?,
        })
    }
}

/// Type 15, PRODUCT_INFORMATION_CHANGE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductInformationChange {
    pub product_id: Option<Id>,
    pub change_source: Option<String>,
    pub changed_fields: Vec<String>,
    pub update_time: Option<i64>,
}

impl ProductInformationChange {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            product_id: d.id("product_id")?,
            change_source: d.text("change_source")?,
            changed_fields: d.texts("changed_fields")?,
            update_time: d.time("update_time")?,
        })
    }
}

/// Type 16, PRODUCT_CREATION.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductCreation {
    pub product_id: Option<Id>,
    pub product_types: Vec<String>,
    pub update_time: Option<i64>,
}

impl ProductCreation {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            product_id: d.id("product_id")?,
            product_types: d.texts("product_types")?,
            update_time: d.time("update_time")?,
        })
    }
}

/// Type 18, PRODUCT_CATEGORY_CHANGE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductCategoryChange {
    pub product_id: Option<Id>,
    pub previous_category_id: Option<Id>,
    pub current_category_id: Option<Id>,
    pub update_time: Option<i64>,
}

impl ProductCategoryChange {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            product_id: d.id("product_id")?,
            previous_category_id: d.id("previous_category_id")?,
            current_category_id: d.id("current_category_id")?,
            update_time: d.time("update_time")?,
        })
    }
}

/// Type 37, PRODUCT_AUDIT_STATUS_CHANGE. TikTok nests the status as `audit: {status}`;
/// it is flattened here because it is the only member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductAuditStatusChange {
    pub product_id: Option<Id>,
    pub audit_status: Option<String>,
    pub update_time: Option<i64>,
}

impl ProductAuditStatusChange {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        let audit_status = match d.nested("audit")? {
            Some(audit) => audit.text("status")?,
            None => None,
        };
        Ok(Self {
            product_id: d.id("product_id")?,
            audit_status,
            update_time: d.time("update_time")?,
        })
    }
}
