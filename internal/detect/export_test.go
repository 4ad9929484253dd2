package detect

// SignInFromVerityForTest is signInFromVerity, for the external tests.
var SignInFromVerityForTest = signInFromVerity
