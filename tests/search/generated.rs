//! A deterministic catalogue of 500 tools across 20 domains, shaped like
//! real SaaS MCP servers: per domain, the usual operations on three kinds of
//! record, and four tools only that domain has. The `many_tools` example
//! serves it; the search tests and the search bench index it.

use serde_json::{Map, Value, json};

/// A parameter: name, JSON type, description.
type Parameter = (&'static str, &'static str, &'static str);

/// A kind of record a domain keeps.
struct Record {
    one: &'static str,
    many: &'static str,
    /// What one record is, for descriptions.
    about: &'static str,
    fields: &'static [Parameter],
}

/// A tool only one domain has: name, description, parameters (the first is
/// required).
type Special = (&'static str, &'static str, &'static [Parameter]);

struct Domain {
    name: &'static str,
    /// The product, for descriptions.
    product: &'static str,
    records: [Record; 3],
    specials: [Special; 4],
}

// One record or special tool a line: a table reads better than rustfmt's layout.
#[rustfmt::skip]
const DOMAINS: &[Domain] = &[
    Domain {
        name: "crm",
        product: "the CRM",
        records: [
            Record { one: "contact", many: "contacts", about: "a person you sell to", fields: &[("email", "string", "Email address"), ("full_name", "string", "First and last name"), ("phone", "string", "Phone number in E.164 form")] },
            Record { one: "company", many: "companies", about: "an organisation account", fields: &[("domain", "string", "The company's web domain"), ("industry", "string", "Industry sector"), ("employee_count", "integer", "Number of employees")] },
            Record { one: "deal", many: "deals", about: "a sales opportunity in the pipeline", fields: &[("amount", "number", "Expected revenue"), ("stage", "string", "Pipeline stage, such as qualified or won"), ("close_date", "string", "Expected close date (YYYY-MM-DD)")] },
        ],
        specials: [
            ("crm_merge_contacts", "Merge two duplicate contacts into one, keeping the primary record's fields", &[("primary_id", "string", "The contact to keep"), ("duplicate_id", "string", "The contact merged into it")]),
            ("crm_log_activity", "Record a call, meeting or note on a contact's timeline", &[("contact_id", "string", "The contact"), ("kind", "string", "call, meeting or note"), ("notes", "string", "What happened")]),
            ("crm_assign_owner", "Assign a sales rep as the owner of an account", &[("company_id", "string", "The company"), ("owner_email", "string", "The rep's email")]),
            ("crm_pipeline_summary", "Totals of open deal value per pipeline stage", &[("pipeline", "string", "Pipeline name")]),
        ],
    },
    Domain {
        name: "calendar",
        product: "the calendar",
        records: [
            Record { one: "event", many: "events", about: "a meeting or appointment", fields: &[("title", "string", "Event title"), ("start", "string", "Start time, ISO 8601"), ("attendees", "array", "Email addresses of the guests")] },
            Record { one: "calendar", many: "calendars", about: "a shared or personal calendar", fields: &[("name", "string", "Calendar name"), ("timezone", "string", "IANA time zone"), ("color", "string", "Display colour")] },
            Record { one: "reminder", many: "reminders", about: "a notification before an event", fields: &[("event_id", "string", "The event"), ("minutes_before", "integer", "How long before the start"), ("channel", "string", "email or push")] },
        ],
        specials: [
            ("calendar_find_free_slots", "Find times when all the given people are available for a meeting", &[("attendees", "array", "Email addresses"), ("duration_minutes", "integer", "Meeting length"), ("within_days", "integer", "How far ahead to look")]),
            ("calendar_respond_to_invite", "Accept, decline or tentatively accept a meeting invitation", &[("event_id", "string", "The invitation's event"), ("response", "string", "accepted, declined or tentative")]),
            ("calendar_set_out_of_office", "Block time as out of office and auto-decline meetings", &[("start_date", "string", "First day away"), ("end_date", "string", "Last day away"), ("message", "string", "Reply to invitations")]),
            ("calendar_agenda", "Today's agenda: the user's events for one day in order", &[("date", "string", "The day (YYYY-MM-DD)")]),
        ],
    },
    Domain {
        name: "files",
        product: "cloud storage",
        records: [
            Record { one: "file", many: "files", about: "a stored document or binary", fields: &[("path", "string", "Path of the file"), ("content", "string", "File contents, base64 for binary"), ("mime_type", "string", "Media type")] },
            Record { one: "folder", many: "folders", about: "a directory that holds files", fields: &[("path", "string", "Folder path"), ("parent_id", "string", "The parent folder")] },
            Record { one: "share_link", many: "share_links", about: "a public link to a file", fields: &[("file_id", "string", "The shared file"), ("expires_at", "string", "When the link stops working"), ("password", "string", "Optional password")] },
        ],
        specials: [
            ("files_move", "Move or rename a file or folder to a new path", &[("source_path", "string", "Current path"), ("destination_path", "string", "New path")]),
            ("files_copy", "Copy a file to another folder", &[("source_path", "string", "File to copy"), ("destination_path", "string", "Where the copy goes")]),
            ("files_storage_usage", "How much storage quota is used and left", &[("drive_id", "string", "The drive")]),
            ("files_restore_version", "Roll a file back to an earlier revision from its version history", &[("file_id", "string", "The file"), ("version_id", "string", "The revision to restore")]),
        ],
    },
    Domain {
        name: "git",
        product: "the code host",
        records: [
            Record { one: "repository", many: "repositories", about: "a git repository", fields: &[("name", "string", "Repository name"), ("visibility", "string", "public or private"), ("default_branch", "string", "Branch checked out by default")] },
            Record { one: "branch", many: "branches", about: "a line of commits", fields: &[("repository", "string", "owner/name"), ("branch", "string", "Branch name"), ("from_ref", "string", "Commit or branch to start from")] },
            Record { one: "pull_request", many: "pull_requests", about: "a proposed change for review", fields: &[("repository", "string", "owner/name"), ("head", "string", "Branch with the changes"), ("base", "string", "Branch to merge into")] },
        ],
        specials: [
            ("git_merge_pull_request", "Merge an approved pull request with a merge, squash or rebase", &[("pull_number", "integer", "The pull request"), ("method", "string", "merge, squash or rebase")]),
            ("git_commit_history", "Commits on a branch, newest first, with author and message", &[("repository", "string", "owner/name"), ("branch", "string", "Branch name"), ("author", "string", "Only this author's commits")]),
            ("git_diff", "The changes between two commits or branches as a unified diff", &[("repository", "string", "owner/name"), ("base", "string", "Older ref"), ("head", "string", "Newer ref")]),
            ("git_blame", "Who last changed each line of a file, and in which commit", &[("repository", "string", "owner/name"), ("path", "string", "File path"), ("ref", "string", "Commit or branch")]),
        ],
    },
    Domain {
        name: "tickets",
        product: "the issue tracker",
        records: [
            Record { one: "ticket", many: "tickets", about: "a bug report or task", fields: &[("summary", "string", "One-line summary"), ("priority", "string", "low, medium, high or urgent"), ("assignee", "string", "Who works on it")] },
            Record { one: "project", many: "projects", about: "a board that groups tickets", fields: &[("key", "string", "Short project key"), ("lead", "string", "Project lead")] },
            Record { one: "sprint", many: "sprints", about: "a time-boxed iteration", fields: &[("goal", "string", "What the sprint should achieve"), ("start_date", "string", "First day"), ("end_date", "string", "Last day")] },
        ],
        specials: [
            ("tickets_transition", "Move a ticket to another workflow status, such as in progress or done", &[("ticket_id", "string", "The ticket"), ("status", "string", "Target status")]),
            ("tickets_add_comment", "Post a comment on a ticket", &[("ticket_id", "string", "The ticket"), ("body", "string", "Comment text in Markdown")]),
            ("tickets_link", "Link two tickets, for example blocks or duplicates", &[("from_ticket", "string", "Source ticket"), ("to_ticket", "string", "Target ticket"), ("link_type", "string", "blocks, relates or duplicates")]),
            ("tickets_log_work", "Log time spent working on a ticket", &[("ticket_id", "string", "The ticket"), ("hours", "number", "Time spent")]),
        ],
    },
    Domain {
        name: "billing",
        product: "the billing system",
        records: [
            Record { one: "invoice", many: "invoices", about: "a bill sent to a customer", fields: &[("customer_id", "string", "Who is billed"), ("line_items", "array", "Products and amounts"), ("due_date", "string", "Payment due date")] },
            Record { one: "subscription", many: "subscriptions", about: "a recurring plan a customer pays for", fields: &[("customer_id", "string", "The subscriber"), ("plan", "string", "Plan id"), ("quantity", "integer", "Seats")] },
            Record { one: "customer", many: "customers", about: "a paying account", fields: &[("email", "string", "Billing email"), ("tax_id", "string", "VAT or tax number"), ("currency", "string", "ISO 4217 currency")] },
        ],
        specials: [
            ("billing_refund_payment", "Give money back for a charge, in full or in part", &[("payment_id", "string", "The charge"), ("amount", "number", "How much to refund")]),
            ("billing_apply_coupon", "Apply a discount code to a subscription", &[("subscription_id", "string", "The subscription"), ("coupon_code", "string", "Discount code")]),
            ("billing_cancel_subscription", "Cancel a subscription now or at the end of the period", &[("subscription_id", "string", "The subscription"), ("at_period_end", "boolean", "Wait for the period to end")]),
            ("billing_revenue_report", "Monthly recurring revenue and churn over a period", &[("from", "string", "Start month"), ("to", "string", "End month")]),
        ],
    },
    Domain {
        name: "weather",
        product: "the weather service",
        records: [
            Record { one: "alert", many: "alerts", about: "a severe weather warning subscription", fields: &[("region", "string", "Area covered"), ("severity", "string", "minor, moderate or severe")] },
            Record { one: "station", many: "stations", about: "an observation station", fields: &[("station_code", "string", "ICAO or WMO code"), ("elevation", "number", "Metres above sea level")] },
            Record { one: "saved_place", many: "saved_places", about: "a favourite location", fields: &[("latitude", "number", "Degrees north"), ("longitude", "number", "Degrees east"), ("label", "string", "Display name")] },
        ],
        specials: [
            ("weather_current_conditions", "Temperature, wind, humidity and sky right now at a place", &[("latitude", "number", "Degrees north"), ("longitude", "number", "Degrees east"), ("units", "string", "metric or imperial")]),
            ("weather_forecast", "Hourly and daily forecast of temperature and precipitation for the coming days", &[("latitude", "number", "Degrees north"), ("longitude", "number", "Degrees east"), ("days", "integer", "Days ahead, up to 14")]),
            ("weather_air_quality", "Air quality index and pollen and pollutant levels", &[("latitude", "number", "Degrees north"), ("longitude", "number", "Degrees east")]),
            ("weather_historical", "Past observations: temperature and rainfall on earlier dates", &[("station_code", "string", "Station"), ("date", "string", "Day (YYYY-MM-DD)")]),
        ],
    },
    Domain {
        name: "email",
        product: "the mailbox",
        records: [
            Record { one: "message", many: "messages", about: "an email", fields: &[("to", "array", "Recipients"), ("subject", "string", "Subject line"), ("body", "string", "Message body")] },
            Record { one: "draft", many: "drafts", about: "an unsent email", fields: &[("to", "array", "Recipients"), ("subject", "string", "Subject line"), ("body", "string", "Message body")] },
            Record { one: "label", many: "labels", about: "a tag that sorts mail", fields: &[("name", "string", "Label name"), ("color", "string", "Display colour")] },
        ],
        specials: [
            ("email_send", "Send an email now to one or more recipients, with attachments", &[("to", "array", "Recipients"), ("subject", "string", "Subject line"), ("body", "string", "Message body"), ("attachments", "array", "File ids to attach")]),
            ("email_reply", "Reply to an email in its thread", &[("message_id", "string", "The message answered"), ("body", "string", "Reply text"), ("reply_all", "boolean", "Answer every recipient")]),
            ("email_mark_read", "Mark messages as read or unread", &[("message_ids", "array", "Messages"), ("read", "boolean", "Read or unread")]),
            ("email_create_filter", "Create a rule that sorts incoming mail automatically", &[("from_address", "string", "Sender to match"), ("label", "string", "Label to apply"), ("skip_inbox", "boolean", "Archive at once")]),
        ],
    },
    Domain {
        name: "chat",
        product: "team chat",
        records: [
            Record { one: "channel", many: "channels", about: "a conversation room", fields: &[("name", "string", "Channel name"), ("topic", "string", "Channel topic"), ("private", "boolean", "Invite-only")] },
            Record { one: "chat_message", many: "chat_messages", about: "a message posted in a channel", fields: &[("channel_id", "string", "Where it is posted"), ("text", "string", "Message text"), ("thread_ts", "string", "Thread to answer in")] },
            Record { one: "user_group", many: "user_groups", about: "a mentionable group of people", fields: &[("handle", "string", "Mention handle"), ("members", "array", "User ids")] },
        ],
        specials: [
            ("chat_post_message", "Post a message to a channel or a direct conversation", &[("channel_id", "string", "Channel or conversation"), ("text", "string", "Message text")]),
            ("chat_add_reaction", "React to a message with an emoji", &[("message_id", "string", "The message"), ("emoji", "string", "Emoji name")]),
            ("chat_set_status", "Set the user's status text, emoji and presence", &[("status_text", "string", "Status"), ("status_emoji", "string", "Emoji"), ("away", "boolean", "Show as away")]),
            ("chat_invite_to_channel", "Invite people to join a channel", &[("channel_id", "string", "The channel"), ("user_ids", "array", "Who to invite")]),
        ],
    },
    Domain {
        name: "wiki",
        product: "the knowledge base",
        records: [
            Record { one: "page", many: "pages", about: "a wiki article", fields: &[("title", "string", "Page title"), ("body", "string", "Content in Markdown"), ("space", "string", "Space key")] },
            Record { one: "space", many: "spaces", about: "a section of the wiki for one team", fields: &[("key", "string", "Space key"), ("name", "string", "Space name")] },
            Record { one: "attachment", many: "attachments", about: "a file attached to a page", fields: &[("page_id", "string", "The page"), ("filename", "string", "File name")] },
        ],
        specials: [
            ("wiki_page_history", "Earlier revisions of a page and who edited them", &[("page_id", "string", "The page")]),
            ("wiki_move_page", "Move a page under another parent page or space", &[("page_id", "string", "The page"), ("new_parent_id", "string", "New parent")]),
            ("wiki_add_label", "Tag a page with a label so it can be found", &[("page_id", "string", "The page"), ("label", "string", "Tag")]),
            ("wiki_export_pdf", "Export a page and its children as a PDF document", &[("page_id", "string", "The page"), ("include_children", "boolean", "With sub-pages")]),
        ],
    },
    Domain {
        name: "database",
        product: "the managed database",
        records: [
            Record { one: "table", many: "tables", about: "a SQL table", fields: &[("schema", "string", "Schema name"), ("table", "string", "Table name"), ("columns", "array", "Column definitions")] },
            Record { one: "backup", many: "backups", about: "a snapshot of the database", fields: &[("instance_id", "string", "Database instance"), ("retention_days", "integer", "How long it is kept")] },
            Record { one: "db_user", many: "db_users", about: "a database login role", fields: &[("username", "string", "Role name"), ("privileges", "array", "Granted privileges")] },
        ],
        specials: [
            ("database_run_query", "Run a read-only SQL SELECT statement and return the rows", &[("sql", "string", "The SQL statement"), ("max_rows", "integer", "Row limit")]),
            ("database_explain", "Show the query plan of a SQL statement to find slow parts", &[("sql", "string", "The SQL statement")]),
            ("database_table_schema", "Columns, types, indexes and keys of a table", &[("table", "string", "Table name")]),
            ("database_restore_backup", "Restore an instance from a snapshot to a point in time", &[("backup_id", "string", "The snapshot"), ("target_instance", "string", "Instance to restore into")]),
        ],
    },
    Domain {
        name: "monitoring",
        product: "the observability platform",
        records: [
            Record { one: "monitor", many: "monitors", about: "an alerting rule on a metric", fields: &[("query", "string", "Metric query"), ("threshold", "number", "Value that triggers"), ("notify", "array", "Who is paged")] },
            Record { one: "dashboard", many: "dashboards", about: "a set of graphs", fields: &[("title", "string", "Dashboard title"), ("widgets", "array", "Graph definitions")] },
            Record { one: "incident", many: "incidents", about: "an outage being handled", fields: &[("title", "string", "What is broken"), ("severity", "string", "SEV1 to SEV4"), ("commander", "string", "Incident commander")] },
        ],
        specials: [
            ("monitoring_query_metrics", "Time series of a metric such as CPU or latency over a time range", &[("metric", "string", "Metric name"), ("from", "string", "Start time"), ("to", "string", "End time")]),
            ("monitoring_search_logs", "Search application log lines by text and time range", &[("text", "string", "Words to find"), ("service", "string", "Service name"), ("from", "string", "Start time")]),
            ("monitoring_mute_monitor", "Silence an alert for a while, for example during maintenance", &[("monitor_id", "string", "The monitor"), ("minutes", "integer", "How long")]),
            ("monitoring_acknowledge_page", "Acknowledge an on-call page so it stops escalating", &[("page_id", "string", "The page")]),
        ],
    },
    Domain {
        name: "cloud",
        product: "the cloud provider",
        records: [
            Record { one: "instance", many: "instances", about: "a virtual machine", fields: &[("machine_type", "string", "Size, such as 2 vCPU 4 GB"), ("image", "string", "OS image"), ("zone", "string", "Availability zone")] },
            Record { one: "bucket", many: "buckets", about: "an object storage bucket", fields: &[("bucket_name", "string", "Globally unique name"), ("region", "string", "Region"), ("versioning", "boolean", "Keep old versions")] },
            Record { one: "security_group", many: "security_groups", about: "a set of firewall rules", fields: &[("vpc_id", "string", "Network"), ("ingress_rules", "array", "Allowed inbound ports and sources")] },
        ],
        specials: [
            ("cloud_start_instance", "Power on a stopped virtual machine", &[("instance_id", "string", "The VM")]),
            ("cloud_stop_instance", "Shut down a running virtual machine", &[("instance_id", "string", "The VM"), ("force", "boolean", "Power off without a clean shutdown")]),
            ("cloud_resize_instance", "Change a VM's machine type to get more CPU or memory", &[("instance_id", "string", "The VM"), ("machine_type", "string", "New size")]),
            ("cloud_cost_estimate", "Estimate the monthly cost of the resources in a project", &[("project_id", "string", "The project")]),
        ],
    },
    Domain {
        name: "dns",
        product: "the DNS provider",
        records: [
            Record { one: "zone", many: "zones", about: "a domain's DNS zone", fields: &[("domain", "string", "Domain name"), ("nameservers", "array", "Authoritative servers")] },
            Record { one: "record", many: "records", about: "a DNS resource record such as A, CNAME or MX", fields: &[("zone_id", "string", "The zone"), ("type", "string", "A, AAAA, CNAME, MX or TXT"), ("value", "string", "Record data"), ("ttl", "integer", "Time to live in seconds")] },
            Record { one: "certificate", many: "certificates", about: "a TLS certificate for a domain", fields: &[("hostnames", "array", "Names it covers"), ("auto_renew", "boolean", "Renew before expiry")] },
        ],
        specials: [
            ("dns_lookup", "Resolve a hostname and show its current DNS answers", &[("hostname", "string", "Name to resolve"), ("type", "string", "Record type")]),
            ("dns_check_propagation", "Check whether a DNS change has reached resolvers worldwide", &[("hostname", "string", "Name"), ("expected_value", "string", "The new value")]),
            ("dns_purge_cache", "Purge the CDN cache for a site's URLs", &[("zone_id", "string", "The zone"), ("urls", "array", "URLs to purge")]),
            ("dns_domain_availability", "Check whether a domain name can be registered and its price", &[("domain", "string", "Domain name")]),
        ],
    },
    Domain {
        name: "analytics",
        product: "product analytics",
        records: [
            Record { one: "report", many: "reports", about: "a saved chart of events", fields: &[("event_name", "string", "Event counted"), ("group_by", "string", "Property to split by"), ("interval", "string", "day, week or month")] },
            Record { one: "segment", many: "segments", about: "a group of users defined by filters", fields: &[("filters", "array", "Conditions on user properties"), ("name", "string", "Segment name")] },
            Record { one: "funnel", many: "funnels", about: "a sequence of steps users take", fields: &[("steps", "array", "Event names in order"), ("window_days", "integer", "Conversion window")] },
        ],
        specials: [
            ("analytics_track_event", "Record a product event for a user with its properties", &[("user_id", "string", "Who did it"), ("event_name", "string", "What happened"), ("properties", "object", "Event properties")]),
            ("analytics_retention", "Cohort retention: how many users come back week after week", &[("cohort_event", "string", "Event that starts a cohort"), ("weeks", "integer", "Weeks to follow")]),
            ("analytics_page_views", "Website page views and unique visitors over a period", &[("site", "string", "Site id"), ("from", "string", "Start date"), ("to", "string", "End date")]),
            ("analytics_ab_test_results", "Conversion per variant of an A/B experiment and its significance", &[("experiment_id", "string", "The experiment")]),
        ],
    },
    Domain {
        name: "hr",
        product: "the HR system",
        records: [
            Record { one: "employee", many: "employees", about: "a person on the payroll", fields: &[("full_name", "string", "Name"), ("job_title", "string", "Title"), ("manager_id", "string", "Their manager")] },
            Record { one: "time_off_request", many: "time_off_requests", about: "a vacation or leave request", fields: &[("employee_id", "string", "Who is away"), ("start_date", "string", "First day"), ("end_date", "string", "Last day"), ("kind", "string", "vacation, sick or parental")] },
            Record { one: "job_opening", many: "job_openings", about: "a position being hired for", fields: &[("title", "string", "Job title"), ("department", "string", "Team"), ("location", "string", "Office or remote")] },
        ],
        specials: [
            ("hr_approve_time_off", "Approve or reject an employee's leave request", &[("request_id", "string", "The request"), ("approved", "boolean", "Approve or reject")]),
            ("hr_org_chart", "Reporting lines: who reports to whom under a manager", &[("manager_id", "string", "Top of the chart")]),
            ("hr_payslip", "An employee's salary payslip for a month", &[("employee_id", "string", "The employee"), ("month", "string", "YYYY-MM")]),
            ("hr_onboard_employee", "Start onboarding for a new hire: accounts, equipment and checklist", &[("employee_id", "string", "The new hire"), ("start_date", "string", "First day")]),
        ],
    },
    Domain {
        name: "inventory",
        product: "the warehouse system",
        records: [
            Record { one: "product", many: "products", about: "an item for sale", fields: &[("sku", "string", "Stock keeping unit"), ("price", "number", "Unit price"), ("barcode", "string", "EAN or UPC")] },
            Record { one: "warehouse", many: "warehouses", about: "a storage location", fields: &[("address", "string", "Street address"), ("capacity", "integer", "Pallet capacity")] },
            Record { one: "purchase_order", many: "purchase_orders", about: "an order to a supplier", fields: &[("supplier_id", "string", "Supplier"), ("items", "array", "SKUs and quantities"), ("expected_date", "string", "Delivery date")] },
        ],
        specials: [
            ("inventory_stock_level", "How many units of a product are on hand in each warehouse", &[("sku", "string", "Product"), ("warehouse_id", "string", "Only this warehouse")]),
            ("inventory_adjust_stock", "Correct the on-hand quantity after a count or damage", &[("sku", "string", "Product"), ("delta", "integer", "Units to add or remove"), ("reason", "string", "Why")]),
            ("inventory_transfer_stock", "Move units of a product between warehouses", &[("sku", "string", "Product"), ("from_warehouse", "string", "Source"), ("to_warehouse", "string", "Destination"), ("quantity", "integer", "Units")]),
            ("inventory_low_stock", "Products below their reorder point", &[("warehouse_id", "string", "Warehouse")]),
        ],
    },
    Domain {
        name: "shipping",
        product: "the shipping platform",
        records: [
            Record { one: "shipment", many: "shipments", about: "a parcel on its way", fields: &[("carrier", "string", "UPS, FedEx, DHL…"), ("weight_kg", "number", "Weight"), ("destination", "object", "Recipient address")] },
            Record { one: "label", many: "labels", about: "a printable postage label", fields: &[("shipment_id", "string", "The shipment"), ("format", "string", "PDF or ZPL")] },
            Record { one: "pickup", many: "pickups", about: "a courier collection", fields: &[("address", "object", "Where to collect"), ("ready_time", "string", "When parcels are ready")] },
        ],
        specials: [
            ("shipping_track_package", "Where a parcel is now and its delivery estimate, by tracking number", &[("tracking_number", "string", "The carrier's tracking number")]),
            ("shipping_compare_rates", "Prices and delivery times of carriers for a parcel", &[("origin_zip", "string", "From postcode"), ("destination_zip", "string", "To postcode"), ("weight_kg", "number", "Weight")]),
            ("shipping_validate_address", "Check and correct a postal address before shipping", &[("address", "object", "Street, city, postcode, country")]),
            ("shipping_create_return", "Create a return label so a customer can send an order back", &[("order_id", "string", "The order"), ("reason", "string", "Why it is returned")]),
        ],
    },
    Domain {
        name: "maps",
        product: "the maps service",
        records: [
            Record { one: "place", many: "places", about: "a point of interest", fields: &[("name", "string", "Place name"), ("category", "string", "restaurant, hotel, …"), ("location", "object", "Latitude and longitude")] },
            Record { one: "route", many: "routes", about: "a saved itinerary", fields: &[("waypoints", "array", "Stops in order"), ("mode", "string", "driving, walking, cycling or transit")] },
            Record { one: "geofence", many: "geofences", about: "an area that triggers on entry or exit", fields: &[("polygon", "array", "Boundary coordinates"), ("radius_m", "number", "Radius in metres")] },
        ],
        specials: [
            ("maps_geocode", "Turn a street address into latitude and longitude coordinates", &[("address", "string", "The address")]),
            ("maps_reverse_geocode", "Find the address at given coordinates", &[("latitude", "number", "Degrees north"), ("longitude", "number", "Degrees east")]),
            ("maps_directions", "Turn-by-turn directions and travel time between two places", &[("origin", "string", "Start"), ("destination", "string", "End"), ("mode", "string", "driving, walking or transit")]),
            ("maps_nearby", "Places of a kind near a point, such as cafes within a radius", &[("latitude", "number", "Degrees north"), ("longitude", "number", "Degrees east"), ("keyword", "string", "What to look for"), ("radius_m", "number", "Search radius")]),
        ],
    },
    Domain {
        name: "ci",
        product: "the CI service",
        records: [
            Record { one: "pipeline", many: "pipelines", about: "a build and deploy workflow", fields: &[("repository", "string", "owner/name"), ("config_path", "string", "Workflow file")] },
            Record { one: "build", many: "builds", about: "one run of a pipeline", fields: &[("pipeline_id", "string", "The pipeline"), ("commit_sha", "string", "Commit built"), ("status", "string", "queued, running, passed or failed")] },
            Record { one: "secret", many: "secrets", about: "an encrypted variable for builds", fields: &[("key", "string", "Variable name"), ("value", "string", "Secret value, write-only")] },
        ],
        specials: [
            ("ci_trigger_build", "Start a pipeline run for a branch or commit", &[("pipeline_id", "string", "The pipeline"), ("branch", "string", "Branch to build")]),
            ("ci_build_logs", "The console output of a build's job, to see why it failed", &[("build_id", "string", "The build"), ("job", "string", "Job name")]),
            ("ci_retry_build", "Run a failed build again", &[("build_id", "string", "The build")]),
            ("ci_deploy", "Deploy a build's artifact to an environment such as staging or production", &[("build_id", "string", "The build"), ("environment", "string", "staging or production")]),
        ],
    },
];

/// The seven operations every record has, by name pattern.
const OPERATIONS: usize = 7;

/// The 500 tools, unprefixed, in a fixed order.
pub fn tools() -> Vec<Value> {
    let mut tools = Vec::new();
    for domain in DOMAINS {
        for record in &domain.records {
            for operation in 0..OPERATIONS {
                tools.push(record_tool(domain, record, operation));
            }
        }
        for (name, description, parameters) in &domain.specials {
            tools.push(tool(name, description, parameters, 1));
        }
    }
    tools
}

/// `copies` times the 500 tools, copy `i` under the prefix `big<i>__`: a
/// large catalogue for timing the index.
pub fn many(copies: usize) -> Vec<Value> {
    let base = tools();
    let mut all = Vec::with_capacity(base.len() * copies);
    for copy in 0..copies {
        for item in &base {
            let mut item = item.clone();
            let name = format!("big{copy}__{}", item["name"].as_str().unwrap_or_default());
            item["name"] = Value::String(name);
            all.push(item);
        }
    }
    all
}

fn record_tool(domain: &Domain, record: &Record, operation: usize) -> Value {
    let Domain {
        name: d, product, ..
    } = domain;
    let Record {
        one,
        many,
        about,
        fields,
    } = record;
    let id: Parameter = ("id", "string", "The record's id");
    let paging: &[Parameter] = &[
        ("limit", "integer", "Most results to return"),
        ("cursor", "string", "Where the previous page ended"),
    ];
    let (name, description, parameters, required) = match operation {
        0 => (
            format!("{d}_list_{many}"),
            format!(
                "List the {} in {product} ({about}), a page at a time.",
                words(many)
            ),
            paging.to_vec(),
            0,
        ),
        1 => (
            format!("{d}_get_{one}"),
            format!(
                "Get one {} from {product} by its id, with all its fields.",
                words(one)
            ),
            vec![id],
            1,
        ),
        2 => (
            format!("{d}_create_{one}"),
            format!("Create a new {} in {product}: {about}.", words(one)),
            fields.to_vec(),
            1,
        ),
        3 => (
            format!("{d}_update_{one}"),
            format!("Change fields of an existing {} in {product}.", words(one)),
            [&[id][..], fields].concat(),
            1,
        ),
        4 => (
            format!("{d}_delete_{one}"),
            format!("Delete a {} from {product} permanently.", words(one)),
            vec![id, ("confirm", "boolean", "Must be true")],
            2,
        ),
        5 => (
            format!("{d}_search_{many}"),
            format!("Search {} in {product} by text and filters.", words(many)),
            [
                &[("query", "string", "Text to match")][..],
                &fields[..1],
                paging,
            ]
            .concat(),
            1,
        ),
        _ => (
            format!("{d}_export_{many}"),
            format!(
                "Export all {} from {product} as a CSV or JSON file.",
                words(many)
            ),
            vec![
                ("format", "string", "csv or json"),
                ("since", "string", "Only records changed after this date"),
            ],
            0,
        ),
    };
    tool(&name, &description, &parameters, required)
}

fn words(name: &str) -> String {
    name.replace('_', " ")
}

/// A tool definition whose first `required` parameters are required.
fn tool(name: &str, description: &str, parameters: &[Parameter], required: usize) -> Value {
    let properties: Map<String, Value> = parameters
        .iter()
        .map(|(name, kind, description)| {
            let mut schema = json!({ "type": kind, "description": description });
            if *kind == "array" {
                schema["items"] = json!({ "type": "string" });
            }
            ((*name).to_owned(), schema)
        })
        .collect();
    let required: Vec<&str> = parameters.iter().take(required).map(|p| p.0).collect();
    json!({
        "name": name,
        "description": description,
        "inputSchema": { "type": "object", "properties": properties, "required": required }
    })
}
