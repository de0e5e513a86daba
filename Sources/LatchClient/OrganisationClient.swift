import Foundation
import LatchWire

/// The organisation routes, with an ORG key (an organisation owner's; `latch apikey create
/// --scope ORG`). An ORG key is not an identity: no private key is involved.
public struct OrganisationClient: Sendable {
    let http: LatchHTTPClient

    public init(baseURL: URL, orgKey: String, transport: any HTTPTransport = DefaultHTTPTransport()) {
        http = LatchHTTPClient(baseURL: baseURL, apiKey: orgKey, transport: transport)
    }

    /// The organisation and its tenants, oldest first.
    public func show() async throws -> OrganisationResponse {
        try await http.getJSON(OrganisationResponse.self, LatchRoutes.organisation)
    }

    /// A new tenant with its first TENANT_ADMIN (`adminPublicKeyPEM` made on that admin's host).
    /// The answer holds that admin's API key, shown once: store it, never print it.
    public func createTenant(name: String, adminName: String, adminPublicKeyPEM: String) async throws -> BootstrapResponse {
        try await http.postJSON(BootstrapResponse.self, LatchRoutes.organisationTenants,
                                body: CreateTenantRequest(name: name, adminName: adminName, adminPublicKey: adminPublicKeyPEM))
    }
}
