plugins {
    `java-library`
}

// Java 11 bytecode and API: what Android's D8 desugars for minSdk 26 (see ../README.md).
tasks.withType<JavaCompile>().configureEach {
    options.release.set(11)
    options.encoding = "UTF-8"
    options.compilerArgs.addAll(listOf("-Xlint:all", "-Werror"))
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    // The golden files written by scripts/make_android_goldens.py; without them the tests fail
    // with the command that makes them (nothing is skipped).
    val goldens = (findProperty("lingolite.goldens") ?: System.getenv("LINGOLITE_GOLDENS") ?: "")
    systemProperty("lingolite.goldens", goldens.toString())
}
