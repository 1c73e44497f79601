/// The release of this package, recorded in reports.
public let layercollapseVersion = "0.1.0"
