pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "LingoLiteDemo"

// core: pure Java (no Android imports), unit-tested on the JVM; app: the Android UI + ExecuTorch.
include(":core", ":app")
