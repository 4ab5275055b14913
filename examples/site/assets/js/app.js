// Plain script: copied and fingerprinted (JS minification arrives with the JS transformer).
document.documentElement.dataset.kiln = "ready";
