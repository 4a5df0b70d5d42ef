//! The kinds of items backends list: tools and prompts by name, resources
//! by URI; and the list request of each.

use crate::mcp::request::Method;

/// One paginated list request to a backend: the capability it needs, the
/// method, and the result member that holds the items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    pub capability: &'static str,
    pub method: Method,
    pub key: &'static str,
}

pub const RESOURCES: Listing = Listing {
    capability: "resources",
    method: Method::ResourcesList,
    key: "resources",
};

pub const RESOURCE_TEMPLATES: Listing = Listing {
    capability: "resources",
    method: Method::ResourceTemplatesList,
    key: "resourceTemplates",
};

/// A kind of item that backends list by name and clients use by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedKind {
    Tool,
    Prompt,
}

impl NamedKind {
    /// The word for one item, in messages and error data.
    pub fn noun(self) -> &'static str {
        match self {
            NamedKind::Tool => "tool",
            NamedKind::Prompt => "prompt",
        }
    }

    pub fn listing(self) -> Listing {
        match self {
            NamedKind::Tool => Listing {
                capability: "tools",
                method: Method::ToolsList,
                key: "tools",
            },
            NamedKind::Prompt => Listing {
                capability: "prompts",
                method: Method::PromptsList,
                key: "prompts",
            },
        }
    }

    /// The create-session field that holds a session's rules for them.
    pub fn field(self) -> &'static str {
        match self {
            NamedKind::Tool => "tools",
            NamedKind::Prompt => "prompts",
        }
    }

    /// The request that uses one item by name.
    pub fn use_method(self) -> Method {
        match self {
            NamedKind::Tool => Method::ToolsCall,
            NamedKind::Prompt => Method::PromptsGet,
        }
    }
}
