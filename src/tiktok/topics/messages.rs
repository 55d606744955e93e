//! Topics about customer-service chat: types 13 and 14.

use std::fmt;

use serde::Serialize;

use super::fields::{FieldError, Fields};
use crate::tiktok::ids::Id;

/// Type 13, NEW_CONVERSATION.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewConversation {
    pub conversation_id: Option<Id>,
    pub create_time: Option<i64>,
}

impl NewConversation {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        Ok(Self {
            conversation_id: d.id("conversation_id")?,
            create_time: d.time("create_time")?,
        })
    }
}

/// Type 14, NEW_MESSAGE.
///
/// `index` orders the messages of a conversation; it is a string of digits above 2^53,
/// so it is an [`Id`] (exact digits) rather than a number. `content` is JSON encoded
/// inside a string (`"{\"content\":\"hello\"}"`); it is kept as sent, and
/// [`NewMessage::text`] decodes it.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NewMessage {
    pub message_id: Option<Id>,
    pub index: Option<Id>,
    pub conversation_id: Option<Id>,
    #[serde(rename = "type")]
    pub message_type: Option<String>,
    pub content: Option<String>,
    pub create_time: Option<i64>,
    pub is_visible: Option<bool>,
    pub sender: Option<MessageSender>,
}

/// Who sent a [`NewMessage`] (`role` is `BUYER`, `SHOP`, `SYSTEM`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageSender {
    pub im_user_id: Option<Id>,
    pub role: Option<String>,
}

/// Leaves out what the buyer wrote: `Debug` output ends up in logs.
impl fmt::Debug for NewMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMessage")
            .field("message_id", &self.message_id)
            .field("index", &self.index)
            .field("conversation_id", &self.conversation_id)
            .field("message_type", &self.message_type)
            .field("content_len", &self.content.as_ref().map(String::len))
            .field("create_time", &self.create_time)
            .field("is_visible", &self.is_visible)
            .field("sender", &self.sender)
            .finish()
    }
}

impl NewMessage {
    pub(super) fn read(d: &Fields) -> Result<Self, FieldError> {
        let sender = match d.nested("sender")? {
            Some(s) => Some(MessageSender {
                im_user_id: s.id("im_user_id")?,
                role: s.text("role")?,
            }),
            None => None,
        };
        Ok(Self {
            message_id: d.id("message_id")?,
            index: d.id("index")?,
            conversation_id: d.id("conversation_id")?,
            message_type: d.text("type")?,
            content: d.json_text("content")?,
            create_time: d.time("create_time")?,
            is_visible: d.flag("is_visible")?,
            sender,
        })
    }

    /// The message text from `content` when it is the usual `{"content": "..."}`;
    /// `None` for other message types (images, order cards) or content that is not
    /// JSON, whose raw form stays in [`NewMessage::content`].
    pub fn text(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Content {
            content: String,
        }
        let content = self.content.as_deref()?;
        serde_json::from_str::<Content>(content)
            .ok()
            .map(|c| c.content)
    }
}
