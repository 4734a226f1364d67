plugins {
    id("com.android.application")
}

android {
    namespace = "ai.lingolite.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "ai.lingolite.demo"
        minSdk = 26 // java.nio.file, used by the core to read and verify the artifact folder
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk {
            // The ABIs the executorch-android AAR ships.
            abiFilters += listOf("arm64-v8a", "x86_64")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }
}

dependencies {
    implementation(project(":core"))
    // Matches the Python executorch==1.5.1 that writes the .pte (same runtime version on both
    // sides of the program format). Its POM brings fbjni and soloader.
    implementation("org.pytorch:executorch-android:1.5.1")
}
