//! Enumerations. Input is matched case-insensitively (`AdminAdd`, `adminAdd`, `ADMINADD`);
//! v1.0 emits camelCase, beta emits PascalCase (reference §4.2).

/// Declares an enum with its v1.0 (camelCase) spelling; the beta spelling is the same
/// word with an upper-case first letter unless given explicitly.
macro_rules! graph_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $v1:literal $(/ $beta:literal)?),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The v1.0 (camelCase) wire value.
            pub fn v1(self) -> &'static str {
                match self { $($name::$variant => $v1),+ }
            }

            /// The beta (PascalCase) wire value.
            pub fn beta(self) -> &'static str {
                match self { $($name::$variant => graph_enum!(@beta $v1 $(, $beta)?)),+ }
            }

            /// Case-insensitive parse of either spelling.
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim();
                Self::ALL.iter().copied().find(|v| v.v1().eq_ignore_ascii_case(s) || v.beta().eq_ignore_ascii_case(s))
            }

            /// The allowed values, for error messages.
            pub fn allowed() -> String {
                Self::ALL.iter().map(|v| v.v1()).collect::<Vec<_>>().join(", ")
            }
        }
    };
    (@beta $v1:literal) => { const_pascal!($v1) };
    (@beta $v1:literal, $beta:literal) => { $beta };
}

/// Builds the PascalCase spelling at compile time is not possible with `macro_rules!`
/// alone, so beta names are listed explicitly where they differ only by the first letter.
macro_rules! const_pascal {
    ($v1:literal) => {
        $crate::enums::pascal($v1)
    };
}

/// PascalCase of a camelCase literal; every enum value is ASCII and interned once.
pub fn pascal(v1: &'static str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<&'static str, &'static str>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(v1).or_insert_with(|| {
        let mut s = v1.to_string();
        if let Some(first) = s.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        Box::leak(s.into_boxed_str())
    })
}

graph_enum!(
    /// `accessPackageRequestType`. `userExtend` is not a v1.0 member; it is accepted on
    /// input and kept so beta can echo it, and rendered as `userUpdate` on v1.0.
    RequestType {
        NotSpecified = "notSpecified",
        UserAdd = "userAdd",
        UserUpdate = "userUpdate",
        UserExtend = "userExtend",
        UserRemove = "userRemove",
        AdminAdd = "adminAdd",
        AdminUpdate = "adminUpdate",
        AdminRemove = "adminRemove",
        SystemAdd = "systemAdd",
        SystemUpdate = "systemUpdate",
        SystemRemove = "systemRemove",
        OnBehalfAdd = "onBehalfAdd",
        ApproverRemove = "approverRemove",
    }
);

impl RequestType {
    pub fn is_add(self) -> bool {
        matches!(self, RequestType::UserAdd | RequestType::AdminAdd | RequestType::SystemAdd | RequestType::OnBehalfAdd)
    }
    pub fn is_update(self) -> bool {
        matches!(
            self,
            RequestType::UserUpdate | RequestType::UserExtend | RequestType::AdminUpdate | RequestType::SystemUpdate
        )
    }
    pub fn is_remove(self) -> bool {
        matches!(
            self,
            RequestType::UserRemove
                | RequestType::AdminRemove
                | RequestType::SystemRemove
                | RequestType::ApproverRemove
        )
    }
    pub fn is_admin(self) -> bool {
        matches!(self, RequestType::AdminAdd | RequestType::AdminUpdate | RequestType::AdminRemove)
    }
    pub fn is_user(self) -> bool {
        matches!(
            self,
            RequestType::UserAdd | RequestType::UserUpdate | RequestType::UserExtend | RequestType::UserRemove
        )
    }
    /// The v1.0 rendering: `userExtend` is not a v1.0 member and is shown as `userUpdate`.
    pub fn v1_wire(self) -> &'static str {
        match self {
            RequestType::UserExtend => "userUpdate",
            other => other.v1(),
        }
    }
}

graph_enum!(
    /// `accessPackageRequestState`.
    RequestState {
        Submitted = "submitted",
        PendingApproval = "pendingApproval",
        Delivering = "delivering",
        Delivered = "delivered",
        DeliveryFailed = "deliveryFailed",
        Denied = "denied",
        Scheduled = "scheduled",
        Canceled = "canceled",
        PartiallyDelivered = "partiallyDelivered",
    }
);

impl RequestState {
    /// A request in one of these states is still open: it may yet change an assignment.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RequestState::Submitted
                | RequestState::PendingApproval
                | RequestState::Delivering
                | RequestState::Scheduled
        )
    }
    pub fn is_final(self) -> bool {
        !self.is_open()
    }
}

graph_enum!(
    /// `accessPackageAssignmentState`.
    AssignmentState {
        Delivering = "delivering",
        PartiallyDelivered = "partiallyDelivered",
        Delivered = "delivered",
        Expired = "expired",
        DeliveryFailed = "deliveryFailed",
    }
);

impl AssignmentState {
    /// An active assignment grants (or is about to grant) access.
    pub fn is_active(self) -> bool {
        matches!(self, AssignmentState::Delivering | AssignmentState::PartiallyDelivered | AssignmentState::Delivered)
    }
}

graph_enum!(
    /// `accessPackageCatalogState` (beta `catalogStatus`).
    CatalogState { Published = "published", Unpublished = "unpublished" }
);

graph_enum!(
    /// `accessPackageCatalogType`.
    CatalogType { UserManaged = "userManaged", ServiceDefault = "serviceDefault", ServiceManaged = "serviceManaged" }
);

graph_enum!(
    /// `allowedTargetScope` (v1.0); beta expresses it as `requestorSettings.scopeType`.
    AllowedTargetScope {
        NotSpecified = "notSpecified" / "NoSubjects",
        SpecificDirectoryUsers = "specificDirectoryUsers" / "SpecificDirectorySubjects",
        SpecificConnectedOrganizationUsers = "specificConnectedOrganizationUsers" / "SpecificConnectedOrganizationSubjects",
        SpecificDirectoryServicePrincipals = "specificDirectoryServicePrincipals" / "SpecificDirectoryServicePrincipals",
        AllMemberUsers = "allMemberUsers" / "AllExistingDirectoryMemberUsers",
        AllDirectoryUsers = "allDirectoryUsers" / "AllExistingDirectorySubjects",
        AllDirectoryServicePrincipals = "allDirectoryServicePrincipals" / "AllDirectoryServicePrincipals",
        AllConfiguredConnectedOrganizationUsers = "allConfiguredConnectedOrganizationUsers" / "AllConfiguredConnectedOrganizationSubjects",
        AllExternalUsers = "allExternalUsers" / "AllExternalSubjects",
        AllDirectoryAgentIdentities = "allDirectoryAgentIdentities" / "AllDirectoryAgentIdentities",
    }
);

impl AllowedTargetScope {
    /// Beta also names `AllExistingConnectedOrganizationSubjects`; it is read as the
    /// configured-organizations scope.
    pub fn parse_lenient(s: &str) -> Option<Self> {
        Self::parse(s).or_else(|| {
            s.trim()
                .eq_ignore_ascii_case("AllExistingConnectedOrganizationSubjects")
                .then_some(AllowedTargetScope::AllConfiguredConnectedOrganizationUsers)
        })
    }
}

graph_enum!(
    /// `expirationPatternType`.
    ExpirationType {
        NotSpecified = "notSpecified",
        NoExpiration = "noExpiration",
        AfterDateTime = "afterDateTime",
        AfterDuration = "afterDuration",
    }
);

graph_enum!(
    /// `accessPackageSubjectType` (beta `type`).
    SubjectType { NotSpecified = "notSpecified", User = "user", ServicePrincipal = "servicePrincipal" }
);

graph_enum!(
    /// `accessPackageSubjectLifecycle`: an enum type in both schemas, so beta spells its
    /// members as v1.0 does.
    SubjectLifecycle {
        NotDefined = "notDefined" / "notDefined",
        NotGoverned = "notGoverned" / "notGoverned",
        Governed = "governed" / "governed",
    }
);

graph_enum!(
    /// User type in the directory.
    UserType { Member = "Member" / "Member", Guest = "Guest" / "Guest" }
);

graph_enum!(
    /// `approverInformationVisibility`.
    ApproverInformationVisibility { Default = "default", NotVisible = "notVisible", Visible = "visible" }
);

graph_enum!(
    /// `accessReviewExpirationBehavior` (beta `accessReviewTimeoutBehavior`).
    ReviewExpirationBehavior {
        KeepAccess = "keepAccess" / "keepAccess",
        RemoveAccess = "removeAccess" / "removeAccess",
        AcceptAccessRecommendation = "acceptAccessRecommendation" / "acceptAccessRecommendation",
    }
);

graph_enum!(
    /// `accessPackageCustomExtensionStage`.
    CustomExtensionStage {
        AssignmentRequestCreated = "assignmentRequestCreated",
        AssignmentRequestApproved = "assignmentRequestApproved",
        AssignmentRequestGranted = "assignmentRequestGranted",
        AssignmentRequestRemoved = "assignmentRequestRemoved",
        AssignmentFourteenDaysBeforeExpiration = "assignmentFourteenDaysBeforeExpiration",
        AssignmentOneDayBeforeExpiration = "assignmentOneDayBeforeExpiration",
        // Beta's dynamic approval (not in the v1.0 enum): the workflow names the approvers of
        // a policy's `accessPackageDynamicApprovalStage` through `resume`.
        AssignmentRequestDeterminingApprovalRequirements = "assignmentRequestDeterminingApprovalRequirements",
    }
);

impl CustomExtensionStage {
    /// The stages of a request (which may wait for a callback), as opposed to the
    /// pre-expiry stages of an assignment.
    pub fn is_request_stage(self) -> bool {
        matches!(
            self,
            CustomExtensionStage::AssignmentRequestCreated
                | CustomExtensionStage::AssignmentRequestApproved
                | CustomExtensionStage::AssignmentRequestGranted
                | CustomExtensionStage::AssignmentRequestRemoved
                | CustomExtensionStage::AssignmentRequestDeterminingApprovalRequirements
        )
    }
}

graph_enum!(
    /// `accessPackageExternalUserLifecycleAction`.
    ExternalUserLifecycleAction { None = "none", BlockSignIn = "blockSignIn", BlockSignInAndDelete = "blockSignInAndDelete" }
);

graph_enum!(
    /// `connectedOrganizationState`: only `configured` organizations count for the
    /// "all configured connected organizations" scope.
    ConnectedOrganizationState { Configured = "configured" / "configured", Proposed = "proposed" / "proposed" }
);

graph_enum!(
    /// `socialIdentitySourceType`.
    SocialIdentitySourceType { Facebook = "facebook" / "facebook" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_insensitive_and_renders_both_dialects() {
        assert_eq!(RequestType::parse("AdminAdd"), Some(RequestType::AdminAdd));
        assert_eq!(RequestType::parse("adminadd"), Some(RequestType::AdminAdd));
        assert_eq!(RequestType::AdminAdd.v1(), "adminAdd");
        assert_eq!(RequestType::AdminAdd.beta(), "AdminAdd");
        assert_eq!(RequestType::UserExtend.v1_wire(), "userUpdate");
        assert_eq!(RequestState::PendingApproval.beta(), "PendingApproval");
        assert_eq!(AllowedTargetScope::parse("NoSubjects"), Some(AllowedTargetScope::NotSpecified));
        assert_eq!(AllowedTargetScope::AllMemberUsers.beta(), "AllExistingDirectoryMemberUsers");
        assert_eq!(RequestType::parse("Request Type value"), None);
    }
}

/// An assignment request's detail status beside its [`RequestState`] (v1.0 `status`, beta
/// `requestStatus`): the same PascalCase words under both roots and in the stored body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RequestStatus {
    Accepted,
    PendingApproval,
    PendingApprovalEscalated,
    PendingNotBefore,
    /// A custom extension was called at a stage that waits for its `resume`.
    WaitingForCallback,
    Delivering,
    Delivered,
    DeliveryFailed,
    PartiallyDelivered,
    Denied,
    Canceled,
    Expired,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Accepted => "Accepted",
            RequestStatus::PendingApproval => "PendingApproval",
            RequestStatus::PendingApprovalEscalated => "PendingApprovalEscalated",
            RequestStatus::PendingNotBefore => "PendingNotBefore",
            RequestStatus::WaitingForCallback => "WaitingForCallback",
            RequestStatus::Delivering => "Delivering",
            RequestStatus::Delivered => "Delivered",
            RequestStatus::DeliveryFailed => "DeliveryFailed",
            RequestStatus::PartiallyDelivered => "PartiallyDelivered",
            RequestStatus::Denied => "Denied",
            RequestStatus::Canceled => "Canceled",
            RequestStatus::Expired => "Expired",
        }
    }
}

impl std::fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod request_status_tests {
    use super::RequestStatus;

    #[test]
    fn the_stored_words_round_trip() {
        for word in [
            "Accepted",
            "PendingApproval",
            "PendingApprovalEscalated",
            "PendingNotBefore",
            "WaitingForCallback",
            "Delivering",
            "Delivered",
            "DeliveryFailed",
            "PartiallyDelivered",
            "Denied",
            "Canceled",
            "Expired",
        ] {
            let status: RequestStatus = serde_json::from_value(serde_json::json!(word)).unwrap();
            assert_eq!(status.as_str(), word);
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(word));
        }
    }
}
