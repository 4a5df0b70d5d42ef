//! Every route the gateway serves: its path, who may use it and the
//! methods it answers. The router mounts [`Route::ALL`] and the OpenAPI
//! document is checked against it.

/// Who may use a route, and in which shape it answers a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// Anyone who passes the Host and Origin checks: `/healthz`, `/readyz`.
    Public,
    /// Protected Resource Metadata: anyone who passes the Host check, from
    /// any origin (it is public, and browser-based hosts read it).
    Metadata,
    /// Creates, shows or deletes sessions, shows the registry or the
    /// metrics: the admin token, when one is set.
    Management,
    /// A session's MCP endpoint: the session's own token, which its handler
    /// checks once it knows the session. Refusals are JSON-RPC errors.
    Mcp,
    /// A session's tools over plain HTTP: the session's own token, which
    /// the handler checks once it knows the session. Refusals are JSON.
    SessionTools,
    /// The console's pages: the admin token or a console login, when an
    /// admin token is set, and an `Origin` on forms. Refusals are HTML.
    Console,
    /// The console's login and logout: an `Origin` on forms. Refusals are HTML.
    ConsoleLogin,
    /// The pages a session's user opens to authorize an OAuth backend: the
    /// link checks the session's token or its one-time key itself, the
    /// callback its `state`. Refusals are HTML.
    Authorization,
}

impl RouteKind {
    /// Its name in metrics labels.
    pub(super) fn name(self) -> &'static str {
        match self {
            RouteKind::Public => "public",
            RouteKind::Metadata => "metadata",
            RouteKind::Management => "management",
            RouteKind::Mcp => "mcp",
            RouteKind::SessionTools => "session_tools",
            RouteKind::Console => "console",
            RouteKind::ConsoleLogin => "console_login",
            RouteKind::Authorization => "authorization",
        }
    }
}

/// A route the gateway serves. [`Route::ALL`] is what [`configure`]
/// mounts, and the OpenAPI document is checked against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Mcp,
    Healthz,
    Readyz,
    OpenApi,
    Docs,
    DocsFile,
    Metrics,
    Registry,
    RegistryReload,
    CreateSession,
    Sessions,
    Session,
    Audit,
    Tools,
    Tool,
    Authorize,
    OAuthCallback,
    ClientMetadata,
    ResourceMetadata,
    SessionResourceMetadata,
    Console,
    ConsoleSession,
    ConsoleDeleteSession,
    ConsoleCallTool,
    ConsoleCreateSession,
    ConsoleRegistry,
    ConsoleLogin,
    ConsoleLogout,
    /// Any other path under `/ui`: a console 404, once the caller may see
    /// the console at all. It answers no method of its own.
    ConsoleOther,
}

impl Route {
    /// Every route, in the order the router tries them. The patterns do not
    /// overlap, so the order only sets the cost: the router tries them in
    /// turn, each with a `{id}` by a regex, and the MCP endpoint takes
    /// nearly every request.
    pub const ALL: [Route; 29] = [
        Route::Mcp,
        Route::Healthz,
        Route::Readyz,
        Route::OpenApi,
        Route::Docs,
        Route::DocsFile,
        Route::Metrics,
        Route::Registry,
        Route::RegistryReload,
        Route::CreateSession,
        Route::Sessions,
        Route::Session,
        Route::Audit,
        Route::Tools,
        Route::Tool,
        Route::Authorize,
        Route::OAuthCallback,
        Route::ClientMetadata,
        Route::ResourceMetadata,
        Route::SessionResourceMetadata,
        Route::Console,
        Route::ConsoleSession,
        Route::ConsoleDeleteSession,
        Route::ConsoleCallTool,
        Route::ConsoleCreateSession,
        Route::ConsoleRegistry,
        Route::ConsoleLogin,
        Route::ConsoleLogout,
        // Last: it matches every path under /ui.
        Route::ConsoleOther,
    ];

    /// Its path, as the OpenAPI document spells it.
    pub fn pattern(self) -> &'static str {
        match self {
            Route::Mcp => "/session/{id}/mcp",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::OpenApi => "/openapi.json",
            Route::Docs => "/docs",
            Route::DocsFile => "/docs/{file}",
            Route::Metrics => "/metrics",
            Route::Registry => "/registry",
            Route::RegistryReload => "/registry/reload",
            Route::CreateSession => "/create-session",
            Route::Sessions => "/sessions",
            Route::Session => "/session/{id}",
            Route::Audit => "/session/{id}/audit",
            Route::Tools => "/session/{id}/tools",
            Route::Tool => "/session/{id}/tools/{name}",
            Route::Authorize => "/session/{id}/authorize/{server}",
            Route::OAuthCallback => "/oauth/callback",
            Route::ClientMetadata => "/oauth/client-metadata.json",
            Route::ResourceMetadata => "/.well-known/oauth-protected-resource",
            Route::SessionResourceMetadata => {
                "/.well-known/oauth-protected-resource/session/{id}/mcp"
            }
            Route::Console => "/ui",
            Route::ConsoleSession => "/ui/session/{id}",
            Route::ConsoleDeleteSession => "/ui/session/{id}/delete",
            Route::ConsoleCallTool => "/ui/session/{id}/call",
            Route::ConsoleCreateSession => "/ui/create-session",
            Route::ConsoleRegistry => "/ui/registry",
            Route::ConsoleLogin => "/ui/login",
            Route::ConsoleLogout => "/ui/logout",
            Route::ConsoleOther => "/ui/{rest}",
        }
    }

    /// Who may use it.
    pub fn kind(self) -> RouteKind {
        match self {
            Route::Mcp => RouteKind::Mcp,
            Route::Tools | Route::Tool => RouteKind::SessionTools,
            Route::Healthz
            | Route::Readyz
            | Route::OpenApi
            | Route::Docs
            | Route::DocsFile
            | Route::ClientMetadata => RouteKind::Public,
            Route::Authorize | Route::OAuthCallback => RouteKind::Authorization,
            Route::ResourceMetadata | Route::SessionResourceMetadata => RouteKind::Metadata,
            Route::Metrics
            | Route::Registry
            | Route::RegistryReload
            | Route::CreateSession
            | Route::Sessions
            | Route::Session
            | Route::Audit => RouteKind::Management,
            Route::Console
            | Route::ConsoleSession
            | Route::ConsoleDeleteSession
            | Route::ConsoleCallTool
            | Route::ConsoleCreateSession
            | Route::ConsoleRegistry
            | Route::ConsoleOther => RouteKind::Console,
            Route::ConsoleLogin | Route::ConsoleLogout => RouteKind::ConsoleLogin,
        }
    }

    /// The methods it answers, as its 405's `Allow` spells them.
    pub fn allow(self) -> &'static str {
        match self {
            Route::Mcp => "POST, GET, DELETE",
            Route::Session => "GET, DELETE",
            Route::CreateSession
            | Route::RegistryReload
            | Route::Tool
            | Route::ConsoleCallTool
            | Route::ConsoleLogout => "POST",
            Route::ConsoleDeleteSession | Route::ConsoleCreateSession | Route::ConsoleLogin => {
                "GET, POST"
            }
            Route::ConsoleOther => "",
            Route::ResourceMetadata | Route::SessionResourceMetadata => "GET, OPTIONS",
            Route::Healthz
            | Route::Readyz
            | Route::OpenApi
            | Route::Docs
            | Route::DocsFile
            | Route::Metrics
            | Route::Registry
            | Route::Sessions
            | Route::Audit
            | Route::Tools
            | Route::Authorize
            | Route::OAuthCallback
            | Route::ClientMetadata
            | Route::Console
            | Route::ConsoleSession
            | Route::ConsoleRegistry => "GET",
        }
    }

    /// The methods it answers.
    pub fn methods(self) -> impl Iterator<Item = &'static str> {
        self.allow().split(", ").filter(|method| !method.is_empty())
    }

    /// The pattern the router matches: the document's, but for the last
    /// segments that may hold slashes.
    pub(super) fn router_pattern(self) -> &'static str {
        match self {
            Route::DocsFile => "/docs/{file:.*}",
            Route::ConsoleOther => "/ui/{rest:.*}",
            other => other.pattern(),
        }
    }
}
